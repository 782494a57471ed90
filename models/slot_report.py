"""A training worker's job slots, as the worker reports them and ``/metrics`` reads them.

The Celery parent of a training worker (worker/slot_reports.py) rewrites its report every
heartbeat: its slots (pool children) and how many of them hold a task now. The reports are
files in the artifact store (``ArtifactStore.worker_report_path``), which the API processes
and the workers share: no migration, and a worker that cannot reach them loses only its
line in ``/metrics``. A report older than ``running_stale_after_s`` is a worker that died
without withdrawing it: it is not read, and after ``FORGET_AFTER_S`` it is deleted.
"""

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

FORGET_AFTER_S = 24 * 3600.0


@dataclass(frozen=True)
class SlotReport:
    worker: str  # the Celery node name (``cpu@host``, ``gpu0@host``): stable across restarts
    kind: str  # "cpu" or "gpu": which queues it trains from (broker.tasks.is_gpu_queue)
    slots: int  # pool children, one job each
    busy: int  # those running a task now
    at: float  # Unix seconds of the report

    @property
    def free(self) -> int:
        return max(0, self.slots - self.busy)


def write_report(path: Path, report: SlotReport) -> None:
    """Replace ``path`` at once: a reader sees the last report or this one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_text(json.dumps(asdict(report)))
    os.replace(partial, path)


def read_reports(folder: Path, stale_after_s: float, now: float | None = None) -> Iterator[SlotReport]:
    """The fresh reports in ``folder``, each worker's once; a worker's report that stayed stale a day is removed."""
    now = time.time() if now is None else now
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            report = SlotReport(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # withdrawn meanwhile, or not a report
            continue
        if now - report.at <= stale_after_s:
            yield report
        elif now - report.at > FORGET_AFTER_S:
            path.unlink(missing_ok=True)
