"""Every task name and queue name of the service, and the one way each message is sent.

The API sends by task name and never imports the worker; the worker registers its
tasks under the same names. Both import this module, which imports neither Celery
nor TensorFlow: a ``Sender`` is handed the Celery app of the process it runs in.
"""

from typing import Any, Protocol

from models.settings import Settings

TRAIN_TASK = "trainyard.train"
RECONCILE_TASK = "trainyard.reconcile"
DELIVER_WEBHOOKS_TASK = "trainyard.deliver_webhooks"
SWEEP_WEBHOOKS_TASK = "trainyard.sweep_webhooks"
SWEEP_UPLOADS_TASK = "trainyard.sweep_uploads"

# The training queue and the webhook queue are settings (train_queue, webhook_queue); these are not.
CONTROL_QUEUE = "control"  # the reconciler and the upload sweep, consumed by the control worker (beat)
GPU_QUEUE = "gpu"  # what a host's GPU workers consume (a host without GPUs consumes train_queue)


def resume_queue(train_queue: str) -> str:
    """Where jobs that already waited or ran are sent again (handed back, lost, their worker
    dead): training workers take from it before ``train_queue``, so such a job keeps its
    place ahead of later submissions instead of going to the back of the queue."""
    return f"{train_queue}.resume"


def training_queues(train_queue: str) -> list[str]:
    """What a training worker consumes, in the order it looks: resumed jobs first."""
    return [resume_queue(train_queue), train_queue]


class CanSend(Protocol):
    """What a ``Sender`` needs of a Celery app."""

    def send_task(self, name: str, *args: Any, **kwargs: Any) -> Any: ...


class Sender:
    """The messages the service sends; the API and the worker send through this one class.

    Args:
        celery: the process's Celery app (the API's sending-only app, or the worker's).
        settings: name the training and webhook queues.
        retry_policy: the broker retries of a training message; None leaves Celery's default.
    """

    def __init__(self, celery: CanSend, settings: Settings, *, retry_policy: dict[str, float] | None = None) -> None:
        self.celery, self.settings = celery, settings
        self._train_options: dict[str, Any] = {} if retry_policy is None else {
            "retry": True, "retry_policy": retry_policy}

    def train(self, job_id: str) -> None:
        self.celery.send_task(TRAIN_TASK, kwargs={"job_id": job_id}, queue=self.settings.train_queue,
                              **self._train_options)

    def resume(self, job_id: str) -> None:
        """Send a job that already waited or ran (handed back, lost): ahead of later submissions."""
        self.celery.send_task(TRAIN_TASK, kwargs={"job_id": job_id}, queue=resume_queue(self.settings.train_queue),
                              **self._train_options)

    def deliveries(self, job_id: str) -> None:
        """Wake the webhook delivery of a job. No broker retries: a lost wake-up is found by the
        sweep, and the sender (a request, a training step's commit) must not stall on it."""
        self.celery.send_task(DELIVER_WEBHOOKS_TASK, kwargs={"job_id": job_id}, queue=self.settings.webhook_queue,
                              retry=False)

    def reconcile(self) -> None:
        self.celery.send_task(RECONCILE_TASK, queue=CONTROL_QUEUE)
