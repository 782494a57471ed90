"""Celery tasks: thin shells that open the database and call plain functions."""

import logging
from functools import cache

from celery import Task
from celery.exceptions import Reject
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from broker import queue_marker
from broker.tasks import RECONCILE_TASK, TRAIN_TASK
from models.db import make_engine, make_session_factory
from models.outbox import notify_after_commit
from models.settings import get_settings
from worker import job_store, shutdown, sweep_hook, warmup
from worker.celery_app import app, send

log = logging.getLogger(__name__)


@cache
def session_factory() -> sessionmaker[Session]:
    # Created lazily, in the process that uses it: engines must not cross a fork.
    factory = make_session_factory(make_engine(get_settings().database_dsn))
    notify_after_commit(factory, send.deliveries, send.sweep_deliveries)  # committed events wake webhook deliveries
    return factory


@app.task(
    name=TRAIN_TASK,
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=20,
)
def train(self: Task, job_id: str) -> None:
    warmup.wait()  # the background TensorFlow import of this process, if it is still running
    if shutdown.requested():  # delivered as this worker began to stop: leave it to another one
        raise Reject(f"worker stopping; {job_id} left in the queue", requeue=True)
    from worker.training import HeldElsewhere  # imports Keras: only in the child process

    settings = get_settings()
    try:
        _train(job_id)
    except HeldElsewhere as exc:
        # Redelivered while its holder may still be alive (another host, or its heartbeat is
        # fresh): a holder of this host known dead was already taken over by the claim itself.
        raise self.retry(countdown=settings.running_stale_after_s, exc=exc) from exc


def _train(job_id: str) -> None:
    from worker.hand_back import HandBack
    from worker.training import run_training

    factory = session_factory()
    try:
        run_training(factory, job_id, settings=get_settings(), enqueue=send.train)
        sweep_hook.after_job(factory, job_id, settings=get_settings(), send=send.train)
    except HandBack as stop:
        # This worker is shutting down and run_training gave the job back to the queue: send
        # it to the resume queue so that another worker resumes it from its checkpoint at once.
        send.resume(job_id, job_store.resources(factory, job_id))
        log.warning("job %s handed back (%s)", job_id, stop)


@app.task(name=RECONCILE_TASK, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def reconcile() -> list[str]:
    from worker.ensemble_reconciler import reconcile_ensembles
    from worker.reconciler import reconcile as run

    settings = get_settings()
    with app.connection_for_write() as connection:
        lost = queue_marker.queues_lost(connection, settings.train_queue)
        if lost:
            log.warning("the broker lost its queues (restarted without persistence?): re-sending every queued job")
        requeued = run(session_factory(), settings, send.resume, broker_was_reset=lost)
        requeued += reconcile_ensembles(session_factory(), settings, send.ensemble, broker_was_reset=lost)
        if lost:  # only once every message is sent again
            queue_marker.mark_queues_intact(connection, settings.train_queue)
    sweep_hook.advance_running(session_factory(), settings=settings, send=send.train)
    return requeued
