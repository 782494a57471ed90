"""Celery tasks: thin shells that open the database and call plain functions."""

from functools import cache

from celery import Task

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_session_factory
from models.outbox import DELIVER_TASK, notify_after_commit
from models.settings import get_settings
from worker.celery_app import RECONCILE_TASK, TRAIN_TASK, app


@cache
def session_factory() -> sessionmaker[Session]:
    # Created lazily, in the process that uses it: engines must not cross a fork.
    factory = make_session_factory(make_engine(get_settings().database_dsn))
    notify_after_commit(factory, send_deliveries)  # committed job events wake the webhook delivery
    return factory


def send_deliveries(job_id: str) -> None:
    # No broker retries: this runs after a training step's commit and must not stall it.
    app.send_task(DELIVER_TASK, kwargs={"job_id": job_id}, queue=get_settings().webhook_queue, retry=False)


@app.task(
    name=TRAIN_TASK,
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=20,
)
def train(self: Task, job_id: str) -> None:
    from worker.training import HeldElsewhere, run_training  # imports Keras: only in the child process

    settings = get_settings()
    try:
        run_training(session_factory(), job_id, settings=settings, enqueue=send_train)
    except HeldElsewhere as exc:
        # Redelivered after its worker died: wait until that worker's heartbeat is stale.
        raise self.retry(countdown=settings.running_stale_after_s, exc=exc) from exc


def send_train(job_id: str) -> None:
    app.send_task(TRAIN_TASK, kwargs={"job_id": job_id}, queue=get_settings().train_queue)


@app.task(name=RECONCILE_TASK, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def reconcile() -> list[str]:
    from worker.reconciler import reconcile as run

    return run(session_factory(), get_settings(), send_train)
