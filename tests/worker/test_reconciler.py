"""The database is the source of truth: lost messages and dead workers are found."""

from datetime import timedelta

from models.db import utcnow
from models.enums import JobStatus, StopReason
from models.tables import Job
from tests.specs import IRIS_MLP
from tests.worker.conftest import Sent
from worker.reconciler import reconcile


def test_lost_jobs_are_requeued_and_hopeless_ones_failed(make_job, session_factory, db_session, settings):
    old = utcnow() - timedelta(hours=1)
    lost_message = make_job(IRIS_MLP, enqueued_at=old)
    fresh = make_job(IRIS_MLP)
    dead_worker = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=old, attempts=1)
    alive = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1)
    too_many = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=old, attempts=settings.max_attempts)
    cancelling = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=old, attempts=1, cancel_requested=True)
    sent = Sent()

    requeued = reconcile(session_factory, settings, sent)

    assert sorted(requeued) == sorted(sent) == sorted([lost_message, dead_worker])
    db_session.expire_all()
    assert db_session.get(Job, dead_worker).status is JobStatus.queued
    assert db_session.get(Job, fresh).status is JobStatus.queued
    assert db_session.get(Job, alive).status is JobStatus.running
    failed = db_session.get(Job, too_many)
    assert failed.status is JobStatus.failed and failed.error["type"] == "WorkerLost"
    assert db_session.get(Job, cancelling).stop_reason is StopReason.cancelled


def test_a_queue_that_does_not_move_is_called_stalled(make_job, session_factory, settings, caplog):
    """Workers that are up but train nothing (a pool that cannot start a child): jobs wait past
    queued_stale_after_s while none runs. The reconciler says so at every pass."""
    from worker.reconciler import stalled

    long_ago = utcnow() - timedelta(seconds=settings.queued_stale_after_s + 60)
    make_job(IRIS_MLP, created_at=long_ago, enqueued_at=utcnow())  # re-sent just now: still waiting since long ago
    make_job(IRIS_MLP)  # just submitted: not a sign of anything
    assert stalled(session_factory, settings) == 1
    with caplog.at_level("ERROR", logger="worker.reconciler"):
        reconcile(session_factory, settings, lambda *_: None)
    assert "training looks stalled: 1 job(s)" in caplog.text

    make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1, worker="w:1")
    assert stalled(session_factory, settings) == 0  # the queue moves: a worker is busy


def test_a_lost_gpu_job_is_sent_again_to_the_queue_of_its_resources(make_job, session_factory, settings):
    old = utcnow() - timedelta(hours=1)
    gpu_job = make_job({**IRIS_MLP, "resources": {"gpus": 1, "gpu_memory_mb": 3000}}, enqueued_at=old)
    cpu_job = make_job(IRIS_MLP, enqueued_at=old)
    sent = Sent(settings.train_queue)

    reconcile(session_factory, settings, sent)

    assert dict(zip(sent, sent.queues, strict=True)) == {gpu_job: "gpu.4g", cpu_job: settings.train_queue}
