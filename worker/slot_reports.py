"""A training worker's report of its job slots, for ``trainyard_worker_slots`` in /metrics.

Only the Celery parent knows both figures: its slots (``-c``, one pool child each) and how
many are busy (the requests its children accepted and have not finished:
``celery.worker.state.active_requests``, which the parent keeps). A thread of the parent
rewrites the report (models/slot_report.py) every ``heartbeat_interval_s``; the worker
withdraws it when it stops. Workers that do not train (the control worker, the webhook
deliveries) report nothing.
"""

import logging
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from celery.worker import state

from broker.tasks import CONTROL_QUEUE, is_gpu_queue
from datastore.artifacts import ArtifactStore
from models.settings import Settings
from models.slot_report import SlotReport, write_report

log = logging.getLogger(__name__)


def trains(queues: Collection[str], settings: Settings) -> bool:
    """Whether a worker of these queues trains: any queue but the control and webhook ones."""
    return bool(set(queues) - {CONTROL_QUEUE, settings.webhook_queue})


class SlotReporter:
    def __init__(self, path: Path, worker: str, kind: str, slots: int, interval_s: float) -> None:
        self.path, self.worker, self.kind, self.slots, self.interval_s = path, worker, kind, slots, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainyard-slot-report", daemon=True)

    def report(self) -> SlotReport:
        report = SlotReport(self.worker, self.kind, self.slots, len(state.active_requests), time.time())
        write_report(self.path, report)
        return report

    def _run(self) -> None:
        while True:
            try:
                self.report()
            except OSError as exc:  # the artifact store away: /metrics lacks this worker until it is back
                log.warning("slot report not written to %s: %s", self.path, exc)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)
        self.path.unlink(missing_ok=True)


_reporter: SlotReporter | None = None


def start(consumer: Any, settings: Settings) -> None:
    """From ``worker_ready`` (the parent, ``consumer`` Celery's): report if this worker trains."""
    global _reporter
    queues = list(consumer.app.amqp.queues.consume_from)
    if _reporter is not None or not trains(queues, settings):
        return
    kind = "gpu" if any(is_gpu_queue(q) for q in queues) else "cpu"
    path = ArtifactStore(settings.artifacts).worker_report_path(consumer.hostname)
    _reporter = SlotReporter(path, consumer.hostname, kind, consumer.controller.concurrency,
                             settings.heartbeat_interval_s)
    _reporter.start()


def stop() -> None:
    """From ``worker_shutdown``: withdraw the report, so the stopped worker's slots count nowhere."""
    global _reporter
    if _reporter is not None:
        _reporter.stop()
        _reporter = None
