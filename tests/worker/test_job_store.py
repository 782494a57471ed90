from datetime import timedelta

from sqlalchemy import func, select

from models.db import utcnow
from models.enums import JobStatus
from models.tables import EpochMetric, Job
from tests.specs import IRIS_MLP
from worker import job_store


def test_only_one_delivery_claims_a_job(make_job, session_factory):
    job_id = make_job(IRIS_MLP)
    stale = utcnow() - timedelta(minutes=5)
    assert job_store.claim(session_factory, job_id, worker="a:1", stale_before=stale) is not None
    assert job_store.claim(session_factory, job_id, worker="b:2", stale_before=stale) is None


def test_a_running_job_with_a_stale_heartbeat_or_held_by_this_process_is_claimed_again(make_job, session_factory, db_session):
    job_id = make_job(IRIS_MLP)
    job_store.claim(session_factory, job_id, worker="a:1", stale_before=utcnow())
    # Same process (a retry after a database outage) takes it back at once.
    assert job_store.claim(session_factory, job_id, worker="a:1", stale_before=utcnow() - timedelta(hours=1))
    # Another process only once the heartbeat is older than the cutoff.
    assert job_store.claim(session_factory, job_id, worker="b:2", stale_before=utcnow() - timedelta(hours=1)) is None
    assert job_store.claim(session_factory, job_id, worker="b:2", stale_before=utcnow() + timedelta(seconds=1))
    assert db_session.get(Job, job_id).attempts == 3


def test_a_cancelled_job_is_never_claimed(make_job, session_factory):
    job_id = make_job(IRIS_MLP, status=JobStatus.cancelled, cancel_requested=True)
    assert job_store.claim(session_factory, job_id, worker="a:1", stale_before=utcnow()) is None


def test_recording_an_epoch_twice_keeps_one_row(make_job, session_factory, db_session):
    job_id = make_job(IRIS_MLP)
    for loss in (1.0, 0.9):  # a redelivered task trains epoch 1 again
        job_store.record_epoch(session_factory, job_id, epoch=1, logs={"loss": loss, "val_loss": float("nan")},
                               duration_s=0.1, monitor="val_loss")
    rows = db_session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)).all()
    assert len(rows) == 1 and rows[0].metrics == {"loss": 0.9, "val_loss": None}
    assert db_session.scalar(select(func.count()).select_from(EpochMetric).where(EpochMetric.job_id == job_id)) == 1
