# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The CUDA build of TensorFlow on GPU hosts, tensorflow-cpu elsewhere.
TF_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: run test install bench calibration fuzz clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(TF_EXTRA),dev]"
	touch $@

install: $(BIN)/.installed

run: install
	PORT=$(PORT) $(BIN)/trainyard serve

# Lint first (ruff, configured in pyproject.toml): a finding fails the test command as a failing test does.
test: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest

# Schemathesis against the OpenAPI document, on a seeded tenant (needs Postgres and Redis, as the tests do).
FUZZ_EXAMPLES ?= 100
fuzz: install
	TRAINYARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/api/test_fuzz.py -m fuzz -s -q

bench: install
	$(BIN)/python bench/overhead.py

# The diagnosis's recall, false alarms and onset lag on 72 runs of real data (~15 min on 2 cores).
calibration: install
	$(BIN)/python -m bench.calibration --json bench/out/calibration.json

clean:
	rm -rf $(VENV) var
