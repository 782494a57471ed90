"""The Celery task of ensemble builds: a thin shell around ``worker.ensemble.run_ensemble``."""

from celery import Task
from celery.exceptions import Reject
from sqlalchemy.exc import OperationalError

from broker.tasks import BUILD_ENSEMBLE_TASK
from models.settings import get_settings
from worker import shutdown, warmup
from worker.celery_app import app
from worker.tasks import session_factory


@app.task(name=BUILD_ENSEMBLE_TASK, bind=True, autoretry_for=(OperationalError,), retry_backoff=2,
          retry_backoff_max=300, max_retries=20)
def build_ensemble(self: Task, ensemble_id: str) -> None:
    warmup.wait()  # the background TensorFlow import of this process, if it is still running
    if shutdown.requested():  # delivered as this worker began to stop: leave it to another one
        raise Reject(f"worker stopping; ensemble {ensemble_id} left in the queue", requeue=True)
    from worker.ensemble import run_ensemble  # imports Keras: only in the child process
    from worker.training import HeldElsewhere

    settings = get_settings()
    try:
        run_ensemble(session_factory(), ensemble_id, settings=settings)
    except HeldElsewhere as exc:  # redelivered while its builder may still be alive: once its heartbeat could be stale
        raise self.retry(countdown=settings.running_stale_after_s, exc=exc) from exc
