"""A training process past its memory fails the job as OutOfMemory instead of being
SIGKILLed by the kernel: on CPU hosts the pool child runs under RLIMIT_DATA
(worker/memory_limit.py). Run for real, in a child process with a small limit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.enums import JobStatus
from models.settings import Settings
from models.tables import Job
from tests.conftest import REDIS_URL
from tests.specs import IRIS_MLP, spec
from tests.worker.conftest import insert_job
from worker.memory_limit import training_memory_limit

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024**2

# A pool child as the worker starts one: the limit first (worker_process_init), then the job.
CHILD = """
import sys
from pathlib import Path
from models.db import make_engine, make_session_factory
from models.settings import Settings
from worker.memory_limit import limit_training_memory
from worker.training import run_training
url, data_dir, job_id, redis, limit_mib = sys.argv[1:]
settings = Settings(data_dir=Path(data_dir), database_url=url, broker_url=redis, heartbeat_interval_s=3600)
tight = settings.model_copy(update={"worker_memory_bytes": int(limit_mib) * 2**20, "worker_runtime_bytes": 0})
print("limit", limit_training_memory(tight), flush=True)
run_training(make_session_factory(make_engine(url)), job_id, settings=settings)
"""


def test_the_limit_is_set_on_cpu_hosts_only(monkeypatch, tmp_path):
    settings = Settings(data_dir=tmp_path, worker_memory_bytes=3 * 1024**3, worker_runtime_bytes=1024**3)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert training_memory_limit(settings) == 4 * 1024**3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert training_memory_limit(settings) is None


@pytest.mark.e2e  # a training process of its own
def test_a_job_past_the_process_limit_fails_as_out_of_memory_and_the_process_lives(own_db, tmp_path):
    url, factory = own_db
    # 36 M float32 weights (144 MiB), their gradients and Adam's two slots: past 500 MiB with TensorFlow, within
    # the 4 GiB budget the job was checked against (its estimate is right; the process limit is not).
    wide = spec(IRIS_MLP, model={"input_shape": [4], "layers": [
        {"type": "Dense", "units": 6000, "activation": "relu"}, {"type": "Dense", "units": 6000, "activation": "relu"},
        {"type": "Dense", "units": 3, "activation": "softmax"}]}, fit={"epochs": 1})
    job_id = insert_job(factory, wide)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", CHILD, url, str(tmp_path), job_id, REDIS_URL, "500"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]  # not killed: the job failed cleanly
    assert "limit 524288000" in done.stdout
    with factory() as session:
        job = session.get_one(Job, job_id)
        assert job.status is JobStatus.failed and job.error["type"] == "OutOfMemory", job.error
