"""Celery tasks for webhooks: thin shells around ``worker.webhooks``.

They run on their own queue (``TRAINYARD_WEBHOOK_QUEUE``), consumed by a
thread-pool worker that never imports TensorFlow, so a receiver that is slow
or down never occupies a training process.
"""

from celery import Task
from sqlalchemy.exc import OperationalError

from broker.tasks import DELIVER_SWEEP_WEBHOOKS_TASK, DELIVER_WEBHOOKS_TASK, SWEEP_WEBHOOKS_TASK
from models.settings import get_settings
from worker.celery_app import app, send
from worker.tasks import session_factory
from worker.webhooks import SWEEPS, deliver_pending, overdue_jobs


@app.task(name=DELIVER_WEBHOOKS_TASK, bind=True, max_retries=None, autoretry_for=(OperationalError,),
          retry_backoff=2, retry_backoff_max=300)
def deliver_webhooks(self: Task, job_id: str) -> None:
    # The retry schedule and the give-up live in the database (webhook_cursors),
    # so max_retries is unbounded here.
    retry_in = deliver_pending(session_factory(), job_id, settings=get_settings())
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@app.task(name=DELIVER_SWEEP_WEBHOOKS_TASK, bind=True, max_retries=None, autoretry_for=(OperationalError,),
          retry_backoff=2, retry_backoff_max=300)
def deliver_sweep_webhooks(self: Task, sweep_id: str) -> None:
    """A sweep's own events (its request's ``webhook``), by the jobs' delivery code."""
    retry_in = deliver_pending(session_factory(), sweep_id, settings=get_settings(), box=SWEEPS)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@app.task(name=SWEEP_WEBHOOKS_TASK)
def sweep_webhooks() -> list[str]:
    """Re-send the wake-up of jobs (and sweeps) whose delivery message was lost (broker restart, killed worker)."""
    job_ids = overdue_jobs(session_factory())
    for job_id in job_ids:
        send.deliveries(job_id)
    sweep_ids = overdue_jobs(session_factory(), box=SWEEPS)
    for sweep_id in sweep_ids:
        send.sweep_deliveries(sweep_id)
    return job_ids + sweep_ids
