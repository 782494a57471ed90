"""The Celery application of the workers.

This module stays free of TensorFlow: the worker's parent process imports it
and then forks. Each child imports TensorFlow once, in ``worker_process_init``
(so every job in that process reuses it), and on a GPU turns memory growth on.
"""

import logging
import os

import broker.embedded  # noqa: F401  (registers the embedded broker transport)
from celery import Celery, signals

from models.outbox import SWEEP_TASK
from models.settings import celery_options, get_settings
from worker.housekeeping import SWEEP_UPLOADS_TASK

TRAIN_TASK = "trainyard.train"
RECONCILE_TASK = "trainyard.reconcile"
CONTROL_QUEUE = "control"

settings = get_settings()
app = Celery("trainyard", broker=settings.broker_dsn, include=["worker.tasks", "worker.webhook_tasks", "worker.housekeeping"])
app.conf.update(
    **celery_options(settings),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    beat_schedule={
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": settings.reconcile_interval_s,
            "options": {"queue": CONTROL_QUEUE},
        },
        # Webhook deliveries whose wake-up or retry message was lost.
        "sweep-webhooks": {
            "task": SWEEP_TASK,
            "schedule": 60.0,
            "options": {"queue": settings.webhook_queue},
        },
        "sweep-uploads": {"task": SWEEP_UPLOADS_TASK, "schedule": settings.upload_sweep_interval_s,
                          "options": {"queue": CONTROL_QUEUE}},
    },
    beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
)


@signals.worker_process_init.connect
def _import_tensorflow_once(**_: object) -> None:
    if os.environ.get("TRAINYARD_WORKER_NO_TENSORFLOW"):
        return  # the control worker (beat + reconciler): solo pools fire this signal too
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    import keras_bridge.layers  # noqa: F401  (warm the Keras class catalog)

    logging.getLogger(__name__).info("TensorFlow %s ready, GPUs: %s", tf.__version__, tf.config.list_physical_devices("GPU"))


@signals.worker_ready.connect
def _reconcile_on_start(sender: object, **_: object) -> None:
    # A worker that starts may be replacing one that died: look for lost jobs now.
    app.send_task(RECONCILE_TASK, queue=CONTROL_QUEUE)
