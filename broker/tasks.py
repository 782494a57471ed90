"""Every task name and queue name of the service, and the one way each message is sent.

The API sends by task name and never imports the worker; the worker registers its
tasks under the same names. Both import this module, which imports neither Celery
nor TensorFlow: a ``Sender`` is handed the Celery app of the process it runs in.
"""

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from models.settings import Settings

TRAIN_TASK = "trainyard.train"
RECONCILE_TASK = "trainyard.reconcile"
DELIVER_WEBHOOKS_TASK = "trainyard.deliver_webhooks"
DELIVER_SWEEP_WEBHOOKS_TASK = "trainyard.deliver_sweep_webhooks"
SWEEP_WEBHOOKS_TASK = "trainyard.sweep_webhooks"
SWEEP_UPLOADS_TASK = "trainyard.sweep_uploads"
BUILD_ENSEMBLE_TASK = "trainyard.build_ensemble"

# The training queue and the webhook queue are settings (train_queue, webhook_queue); these are not.
CONTROL_QUEUE = "control"  # the reconciler and the upload sweep, consumed by the control worker (beat)
GPU_QUEUE = "gpu"  # what a host's GPU slots consume (a host without GPUs consumes train_queue)
# GPU memory a job may ask for is rounded up to one of these (GiB) to name its queue: a slot that offers
# M GiB consumes the queues of every class up to M, so a job only reaches slots it fits in.
MEMORY_CLASSES_GIB = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def memory_class_gib(memory_mb: int) -> int:
    """The smallest memory class that holds ``memory_mb``."""
    return next(c for c in MEMORY_CLASSES_GIB if c * 1024 >= memory_mb)


def gpu_queue(gpus: int, memory_class: int | None = None) -> str:
    """``gpu`` (one device), ``gpu.x<N>`` (N devices of one worker), with ``.<class>g`` when memory is asked."""
    name = GPU_QUEUE if gpus == 1 else f"{GPU_QUEUE}.x{gpus}"
    return name if memory_class is None else f"{name}.{memory_class}g"


def is_gpu_queue(name: str) -> bool:
    """Whether ``name`` is one of the queues ``gpu_queue`` names, or its resume queue."""
    return name == GPU_QUEUE or name.startswith(f"{GPU_QUEUE}.")


def job_queue(train_queue: str, resources: Mapping[str, Any] | None) -> str:
    """Where a job with these ``resources`` (the spec's block, as stored) is sent: CPU jobs to ``train_queue``,
    GPU jobs to the queue of the slots that can fit them (``gpu_queue``)."""
    gpus = int((resources or {}).get("gpus") or 0)
    if gpus == 0:
        return train_queue
    memory_mb = (resources or {}).get("gpu_memory_mb")
    return gpu_queue(gpus, None if memory_mb is None else memory_class_gib(int(memory_mb)))


def slot_queues(gpus: int, memory_mb: int | None) -> list[str]:
    """The GPU queues a worker process that holds ``gpus`` devices with ``memory_mb`` each consumes, biggest
    needs first (a small job fits elsewhere; a big one only here). ``memory_mb`` None: memory unknown, it
    takes only jobs that ask for none."""
    classes = [c for c in MEMORY_CLASSES_GIB if memory_mb is not None and c * 1024 <= memory_mb]
    return [gpu_queue(gpus, c) for c in reversed(classes)] + [gpu_queue(gpus)]


def resume_queue(train_queue: str) -> str:
    """Where jobs that already waited or ran are sent again (handed back, lost, their worker
    dead): training workers take from it before ``train_queue``, so such a job keeps its
    place ahead of later submissions instead of going to the back of the queue."""
    return f"{train_queue}.resume"


def training_queues(*queues: str) -> list[str]:
    """What a training worker of ``queues`` consumes, in the order it looks: resumed jobs first."""
    return [*(resume_queue(q) for q in queues), *queues]


# Sends a job id to the queue of its resources (the spec's ``resources`` block, as stored):
# ``Sender.train`` or ``Sender.resume``, as the reconciler, auto-retry and hand-back take it.
SendJob = Callable[[str, Mapping[str, Any] | None], None]


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

    def train(self, job_id: str, resources: Mapping[str, Any] | None = None) -> None:
        """Send a new job to the queue of the workers that can fit its ``resources`` (``job_queue``)."""
        self.celery.send_task(TRAIN_TASK, kwargs={"job_id": job_id},
                              queue=job_queue(self.settings.train_queue, resources), **self._train_options)

    def resume(self, job_id: str, resources: Mapping[str, Any] | None = None) -> None:
        """Send a job that already waited or ran (handed back, lost): ahead of later submissions."""
        self.celery.send_task(TRAIN_TASK, kwargs={"job_id": job_id},
                              queue=resume_queue(job_queue(self.settings.train_queue, resources)),
                              **self._train_options)

    def ensemble(self, ensemble_id: str) -> None:
        """Send an ensemble's build to the training workers (they hold Keras; it is seconds of work)."""
        self.celery.send_task(BUILD_ENSEMBLE_TASK, kwargs={"ensemble_id": ensemble_id},
                              queue=self.settings.train_queue, **self._train_options)

    def deliveries(self, job_id: str) -> None:
        """Wake the webhook delivery of a job. No broker retries: a lost wake-up is found by the
        sweep, and the sender (a request, a training step's commit) must not stall on it."""
        self.celery.send_task(DELIVER_WEBHOOKS_TASK, kwargs={"job_id": job_id}, queue=self.settings.webhook_queue,
                              retry=False)

    def sweep_deliveries(self, sweep_id: str) -> None:
        """Wake the webhook delivery of a sweep's own events; as ``deliveries``."""
        self.celery.send_task(DELIVER_SWEEP_WEBHOOKS_TASK, kwargs={"sweep_id": sweep_id},
                              queue=self.settings.webhook_queue, retry=False)

    def reconcile(self) -> None:
        self.celery.send_task(RECONCILE_TASK, queue=CONTROL_QUEUE)
