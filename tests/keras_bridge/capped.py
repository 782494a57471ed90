"""Run ``check_spec`` in a child process under a memory cap (RLIMIT_AS).

For hostile specs that would abort or exhaust the process if a check let them
through: then the child dies, never the test run or the machine.
"""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CAP_BYTES = 3 * 1024**3  # TensorFlow alone reserves about 1.2 GB of address space

_CHILD = """
import json, sys
from keras_bridge.errors import SpecError
from keras_bridge.validate import check_spec
from models.spec import JobSpec
try:
    summary = check_spec(JobSpec.model_validate(json.loads(sys.stdin.read())))
    print(json.dumps({"summary": summary}))
except SpecError as exc:
    print(json.dumps({"issues": [{"loc": list(i.loc), "message": i.message} for i in exc.issues]}))
"""


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))


def check_capped(body: dict[str, Any], **env: str) -> dict[str, Any]:
    """``{"summary": ...}`` or ``{"issues": [...]}``; fails the test if the child crashed."""
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(body), capture_output=True, text=True,
                          env=child_env, preexec_fn=_cap, cwd=ROOT)
    assert done.returncode == 0, f"the check process died ({done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
