# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The CUDA build of TensorFlow on GPU hosts, tensorflow-cpu elsewhere.
TF_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: run test install bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(TF_EXTRA),dev]"
	touch $@

install: $(BIN)/.installed

run: install
	PORT=$(PORT) $(BIN)/trainyard serve

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) var
