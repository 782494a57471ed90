"""The reconciler and cross-validation runs: a run's folds are jobs like any other, its parent is
never sent to a worker, and a fold it requeues or fails moves the run."""

from datetime import timedelta

from sqlalchemy import update

from models.db import transaction, utcnow
from models.enums import JobStatus
from models.tables import Job
from tests.models.test_cv_lifecycle import claim, new_run, parent_of
from tests.worker.conftest import Sent
from worker.reconciler import reconcile, stalled


def test_a_lost_broker_resends_the_folds_and_never_the_run(session_factory, settings):
    parent_id, folds = new_run(session_factory, k=3)
    sent = Sent()

    requeued = reconcile(session_factory, settings, sent, broker_was_reset=True)

    assert parent_id not in requeued and set(folds) <= set(requeued)


def test_a_stalled_queue_counts_the_folds_not_the_run(session_factory, settings):
    parent_id, folds = new_run(session_factory, k=3)
    long_ago = utcnow() - timedelta(seconds=settings.queued_stale_after_s + 60)
    with transaction(session_factory) as session:
        session.execute(update(Job).where(Job.id.in_([parent_id, *folds])).values(created_at=long_ago))
    assert stalled(session_factory, settings) == 3


def test_a_fold_whose_worker_was_lost_too_often_fails_and_so_does_the_run(session_factory, settings):
    parent_id, folds = new_run(session_factory, k=2)
    for fold in folds:
        claim(session_factory, fold)
    old = utcnow() - timedelta(hours=1)
    with transaction(session_factory) as session:
        session.execute(update(Job).where(Job.id.in_(folds)).values(heartbeat_at=old, attempts=settings.max_attempts))
    assert parent_of(session_factory, parent_id).status is JobStatus.running

    reconcile(session_factory, settings, Sent())

    assert parent_of(session_factory, parent_id).status is JobStatus.failed
