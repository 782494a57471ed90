"""The database is the source of truth: lost messages and dead workers are found."""

from datetime import timedelta

from models.db import utcnow
from models.enums import JobStatus, StopReason
from models.tables import Job
from tests.specs import IRIS_MLP
from worker.reconciler import reconcile


def test_lost_jobs_are_requeued_and_hopeless_ones_failed(make_job, session_factory, db_session, settings):
    old = utcnow() - timedelta(hours=1)
    lost_message = make_job(IRIS_MLP, enqueued_at=old)
    fresh = make_job(IRIS_MLP)
    dead_worker = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=old, attempts=1)
    alive = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1)
    too_many = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=old, attempts=settings.max_attempts)
    cancelling = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=old, attempts=1, cancel_requested=True)
    sent: list[str] = []

    requeued = reconcile(session_factory, settings, sent.append)

    assert sorted(requeued) == sorted(sent) == sorted([lost_message, dead_worker])
    db_session.expire_all()
    assert db_session.get(Job, dead_worker).status is JobStatus.queued
    assert db_session.get(Job, fresh).status is JobStatus.queued
    assert db_session.get(Job, alive).status is JobStatus.running
    failed = db_session.get(Job, too_many)
    assert failed.status is JobStatus.failed and failed.error["type"] == "WorkerLost"
    assert db_session.get(Job, cancelling).stop_reason is StopReason.cancelled
