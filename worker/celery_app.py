"""The Celery application of the workers.

This module stays free of TensorFlow: the worker's parent process imports it
and then forks. Each child imports TensorFlow once, in a thread started by
``worker_process_init`` (so it reports UP at once, see worker/warmup.py, and
every job in that process reuses the import), and on a GPU turns memory growth on.
"""

import os

from celery import Celery, signals

import broker.embedded  # noqa: F401  (registers the embedded broker transport)
from broker.tasks import CONTROL_QUEUE, RECONCILE_TASK, SWEEP_UPLOADS_TASK, SWEEP_WEBHOOKS_TASK, Sender
from models.settings import celery_options, get_settings
from worker import shutdown, slot_reports, warmup
from worker.memory_limit import limit_training_memory

settings = get_settings()
app = Celery("trainyard", broker=settings.broker_dsn,
             include=["worker.tasks", "worker.ensemble_tasks", "worker.webhook_tasks", "worker.housekeeping"])
app.conf.update(
    **celery_options(settings),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    # How long a new pool child may take to report UP before its parent kills it (Celery's
    # default is 4 s). The child reports UP before importing TensorFlow, but on a host whose
    # CPUs are saturated even a fork and Celery's own start-up can take seconds, and a child
    # killed for being slow is replaced by one just as slow: a loop that trains nothing.
    worker_proc_alive_timeout=60.0,
    beat_schedule={
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": settings.reconcile_interval_s,
            "options": {"queue": CONTROL_QUEUE},
        },
        # Webhook deliveries whose wake-up or retry message was lost.
        "sweep-webhooks": {
            "task": SWEEP_WEBHOOKS_TASK,
            "schedule": 60.0,
            "options": {"queue": settings.webhook_queue},
        },
        "sweep-uploads": {"task": SWEEP_UPLOADS_TASK, "schedule": settings.upload_sweep_interval_s,
                          "options": {"queue": CONTROL_QUEUE}},
    },
    beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
)
send = Sender(app, settings)  # what the worker's processes send (Celery's default publish retries)


@signals.worker_process_init.connect
def _import_tensorflow_once(**_: object) -> None:
    if os.environ.get("TRAINYARD_WORKER_NO_TENSORFLOW"):
        return  # the control worker (beat + reconciler): solo pools fire this signal too
    limit_training_memory(get_settings())  # before TensorFlow: its allocations count too
    warmup.start()


@signals.worker_shutting_down.connect
def _hand_back_on_warm_shutdown(**_: object) -> None:
    # In the main process, from its SIGTERM handler: the training child stops at the next
    # epoch (worker/hand_back.py) instead of holding the shutdown until its job ends.
    shutdown.request_stop()


@signals.worker_ready.connect
def _reconcile_on_start(sender: object, **_: object) -> None:
    # A worker that starts may be replacing one that died: look for lost jobs now.
    send.reconcile()


@signals.worker_ready.connect
def _report_slots(sender: object, **_: object) -> None:
    slot_reports.start(sender, settings)  # its slots, busy and free, for /metrics


@signals.worker_shutdown.connect
def _withdraw_slot_report(**_: object) -> None:
    slot_reports.stop()
