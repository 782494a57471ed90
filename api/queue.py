"""Sending work to the workers, by task name: the API never imports the worker."""

import broker.embedded  # noqa: F401  (registers the embedded broker transport)
from celery import Celery

from models.outbox import DELIVER_TASK
from models.settings import Settings, celery_options

TRAIN_TASK = "trainyard.train"


class TrainingQueue:
    def __init__(self, settings: Settings) -> None:
        self.queue = settings.train_queue
        self.webhook_queue = settings.webhook_queue
        self.celery = Celery("trainyard-api", broker=settings.broker_dsn)
        self.celery.conf.update(**celery_options(settings))

    def send(self, job_id: str) -> None:
        self.celery.send_task(TRAIN_TASK, kwargs={"job_id": job_id}, queue=self.queue)

    def send_deliveries(self, job_id: str) -> None:
        # No broker retries: a lost wake-up is found by the sweep; a request must not stall on it.
        self.celery.send_task(DELIVER_TASK, kwargs={"job_id": job_id}, queue=self.webhook_queue, retry=False)

    def ping(self, timeout: float = 2.0) -> None:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
