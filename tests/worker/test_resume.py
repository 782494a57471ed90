"""A curve never misses nor repeats an epoch, and a finding is raised once, whatever fails when:
the database connection killed at the record step, the worker process killed mid-run."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from datastore.artifacts import ArtifactStore
from models.db import utcnow
from models.enums import JobStatus
from models.settings import Settings
from models.tables import EpochMetric, Job, JobEvent
from tests.conftest import REDIS_URL
from tests.specs import DIGITS_CNN, spec
from tests.worker.conftest import insert_job
from tests.worker.test_diagnosis_runs import DEEP_SIGMOID
from worker.training import run_training

ROOT = Path(__file__).resolve().parents[2]


def settings_for(url: str, data_dir: Path) -> Settings:
    # A checkpoint after every epoch (not every 10 s): these runs kill the worker after a given epoch.
    return Settings(data_dir=data_dir, database_url=url, broker_url=REDIS_URL, heartbeat_interval_s=3600,
                    checkpoint_interval_s=0)


def recorded(factory, job_id: str) -> tuple[list[int], list[int]]:
    """The epochs of the curve, and of the job.epoch events."""
    with factory() as session:
        rows = session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job_id)
                               .order_by(EpochMetric.epoch))
        events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "job.epoch")
                                 .order_by(JobEvent.id))
        return list(rows), [e.data["epoch"] for e in events]


def checkpointed_epochs(settings: Settings, job_id: str) -> int:
    metadata = ArtifactStore(settings.artifacts).job_dir(job_id) / "backup" / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"]


def kill_the_next_write(url: str, job_id: str, after_epoch: int, killed: list[int]) -> None:
    """Once ``after_epoch`` is recorded, lock the job's row from another session so the
    worker's next write waits, then terminate the worker's connection in that wait."""
    engine = create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as watch, engine.connect() as locker:
            while (watch.scalar(text("SELECT epoch FROM jobs WHERE id = :id"), {"id": job_id}) or 0) < after_epoch:
                time.sleep(0.005)
            locker.execute(text("BEGIN"))
            locked_at = locker.scalar(text("SELECT epoch FROM jobs WHERE id = :id FOR UPDATE"), {"id": job_id})
            mine = locker.scalar(text("SELECT pg_backend_pid()"))
            while True:
                waiting = watch.scalar(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                    "AND pid <> :mine"), {"mine": mine})
                if waiting is not None:
                    break
                time.sleep(0.005)
            watch.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting})
            killed.append(locked_at)
            locker.execute(text("ROLLBACK"))
    finally:
        engine.dispose()


def test_an_epoch_whose_record_was_cut_off_is_trained_and_recorded_again(own_db, tmp_path):
    url, factory = own_db
    settings = settings_for(url, tmp_path)
    job_id = insert_job(factory, spec(DIGITS_CNN, fit={"epochs": 10}))
    killed: list[int] = []
    killer = threading.Thread(target=kill_the_next_write, args=(url, job_id, 2, killed), daemon=True)
    killer.start()

    with pytest.raises(OperationalError):  # the Celery task retries on this
        run_training(factory, job_id, settings=settings)
    killer.join()

    rows, events = recorded(factory, job_id)
    assert killed and rows == events == list(range(1, len(rows) + 1)) and len(rows) >= 2
    # The checkpoint never runs ahead of the record: the resumed run trains the lost epoch again.
    assert checkpointed_epochs(settings, job_id) <= len(rows)

    run_training(factory, job_id, settings=settings)  # the task's retry, in the same process

    rows, events = recorded(factory, job_id)
    assert rows == events == list(range(1, 11))
    with factory() as session:
        job = session.get_one(Job, job_id)
        assert job.status is JobStatus.succeeded and job.attempts == 2, job.error


CHILD = """
import sys
from pathlib import Path
from models.db import make_engine, make_session_factory
from models.settings import Settings
from worker.training import run_training
url, data_dir, job_id, redis = sys.argv[1:]
settings = Settings(data_dir=Path(data_dir), database_url=url, broker_url=redis, heartbeat_interval_s=3600,
                    checkpoint_interval_s=0)
run_training(make_session_factory(make_engine(url)), job_id, settings=settings)
"""


@pytest.mark.e2e  # a training process of its own
def test_a_worker_killed_after_a_finding_resumes_with_each_finding_and_epoch_once(own_db, tmp_path):
    url, factory = own_db
    settings = settings_for(url, tmp_path)
    epochs = 14
    job_id = insert_job(factory, spec(DEEP_SIGMOID, fit={"epochs": epochs}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(tmp_path), job_id, REDIS_URL], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    while True:  # until a training finding is in and two more epochs are recorded
        assert child.poll() is None, child.stdout.read().decode()[-3000:]
        with factory() as session:
            job = session.get_one(Job, job_id)
            raised = [f["epoch"] for f in job.findings if f["phase"] == "training"]
            if raised and job.epoch >= min(raised) + 2:
                break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()

    rows, events = recorded(factory, job_id)
    assert len(rows) < epochs, "the run ended before it could be killed"
    backup = ArtifactStore(settings.artifacts).job_dir(job_id) / "backup"
    state = json.loads((backup / "monitor.json").read_text())
    checkpoint = checkpointed_epochs(settings, job_id)
    # The monitor's memory is saved with the checkpoint (at most the epoch after it, written just before it).
    assert [e["epoch"] for e in state["history"]][-1] in (checkpoint, checkpoint + 1)
    assert {f["code"] for f in state["raised"]} >= {f["code"] for f in job.findings if f["phase"] == "training"}

    # The redelivered message: the killed holder is on this host and gone, so it is claimed at once
    # (its heartbeat is still fresh).
    run_training(factory, job_id, settings=settings)

    rows, events = recorded(factory, job_id)
    assert rows == events == list(range(1, epochs + 1))
    with factory() as session:
        job = session.get_one(Job, job_id)
        assert job.status is JobStatus.succeeded and job.attempts == 2, job.error
        codes = Counter(f["code"] for f in job.findings if f["phase"] != "preflight")
        assert codes["vanishing_gradients"] == 1 and set(codes.values()) == {1}, codes
        raised_events = Counter(e.data["finding"]["code"] for e in session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "job.finding"))
            if e.data["finding"]["phase"] != "preflight" and not e.data.get("resolved"))
        assert raised_events == codes
        started = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id,
                                                         JobEvent.type == "job.started")).all()
        assert len(started) == 2 and started[1].created_at - started[0].created_at < utcnow() - started[0].created_at
