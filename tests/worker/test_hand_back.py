"""A worker that shuts down stops its job without losing or half-recording an epoch."""

import pytest
from sqlalchemy import select

from models.enums import JobStatus
from models.tables import EpochMetric, Job
from tests.specs import DIGITS_CNN, spec
from worker import shutdown
from worker.hand_back import HandBack
from worker.training import run_training


@pytest.fixture
def stop_requested(monkeypatch):
    monkeypatch.setattr(shutdown, "_requested", _SetEvent())
    monkeypatch.setattr(shutdown, "_seen_at", None)


class _SetEvent:
    """The flag the worker's main process sets on SIGTERM, already set."""

    def is_set(self) -> bool:
        return True


def epochs_recorded(db_session, job_id: str) -> list[int]:
    return list(db_session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job_id)))


def test_on_shutdown_the_job_stops_after_its_epoch_is_recorded_and_checkpointed(
        stop_requested, make_job, session_factory, db_session, settings):
    job_id = make_job(spec(DIGITS_CNN, fit={"epochs": 5}))

    with pytest.raises(HandBack, match="after epoch 1"):
        run_training(session_factory, job_id, settings=settings)

    db_session.expire_all()
    assert epochs_recorded(db_session, job_id) == [1]
    assert any((settings.artifacts / "jobs" / job_id / "backup").iterdir())  # BackupAndRestore saved epoch 1
    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.queued and job.attempts == 0  # handed back (lifecycle.release), not a lost worker


def test_past_the_grace_the_job_stops_mid_epoch_and_records_nothing_partial(
        stop_requested, make_job, session_factory, db_session, settings):
    job_id = make_job(spec(DIGITS_CNN, fit={"epochs": 5}))

    with pytest.raises(HandBack, match="mid-epoch"):
        run_training(session_factory, job_id, settings=settings.model_copy(update={"stop_grace_s": 1e-9}))

    db_session.expire_all()
    assert epochs_recorded(db_session, job_id) == []  # the partial first epoch is not reported as done
