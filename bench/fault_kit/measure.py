"""What a fault did, read from outside: a client that keeps asking the API while the
fault happens, and an audit of each job's curve and event log in the database."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg


@dataclass
class Probe:
    """GET /v1/jobs/{id} and GET /v1/jobs every 0.2 s on one keep-alive client."""

    url: str
    headers: dict[str, str]
    job_ids: list[str]
    status_counts: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
            while not self._stop.is_set():
                for path in [*(f"/v1/jobs/{j}" for j in self.job_ids[:1]), "/v1/jobs?limit=5"]:
                    try:
                        status = client.get(path).status_code
                        self.status_counts[status] = self.status_counts.get(status, 0) + 1
                    except httpx.HTTPError:
                        self.transport_errors += 1  # the API itself is down (a scenario that kills it)
                self._stop.wait(0.2)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.status_counts.items() if status >= 500 and status != 503)

    @property
    def unavailable(self) -> int:
        return self.status_counts.get(503, 0)


@dataclass
class JobAudit:
    job_id: str
    status: str
    epochs_expected: int
    curve_epochs: list[int]
    event_epochs: list[int]
    terminal_events: int
    finished_at: datetime | None
    created_at: datetime

    @property
    def missing(self) -> int:
        want = set(range(1, self.epochs_expected + 1))
        return len(want - set(self.curve_epochs)) + len(want - set(self.event_epochs))

    @property
    def duplicated(self) -> int:
        return ((len(self.curve_epochs) - len(set(self.curve_epochs)))
                + (len(self.event_epochs) - len(set(self.event_epochs))))


def _connect(libpq_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url, connect_timeout=5, autocommit=True)


def audit(libpq_url: str, job_id: str) -> JobAudit:
    with _connect(libpq_url) as conn:
        status, epochs, finished_at, created_at, stop_reason = conn.execute(
            "SELECT status, epochs, finished_at, created_at, stop_reason FROM jobs WHERE id = %s", (job_id,)).fetchone()
        curve = [r[0] for r in conn.execute(
            "SELECT epoch FROM epoch_metrics WHERE job_id = %s ORDER BY epoch", (job_id,))]
        events = conn.execute("SELECT type, data FROM job_events WHERE job_id = %s ORDER BY id", (job_id,)).fetchall()
    epoch_events = [int(data["epoch"]) for kind, data in events if kind == "job.epoch"]
    terminal = sum(1 for kind, _ in events if kind in ("job.succeeded", "job.failed", "job.cancelled"))
    # A job stopped early on purpose (early stopping, diagnosis) is expected to have fewer epochs.
    expected = epochs if stop_reason in (None, "completed") else max(curve, default=0)
    return JobAudit(job_id, status, expected, curve, epoch_events, terminal, finished_at, created_at)


def job_state(libpq_url: str, job_id: str) -> tuple[str, int]:
    try:
        with _connect(libpq_url) as conn:
            status, epoch = conn.execute("SELECT status, epoch FROM jobs WHERE id = %s", (job_id,)).fetchone()
            return status, epoch
    except psycopg.OperationalError:
        return "unknown", -1  # the database is the thing being broken


def first_epoch_after(libpq_url: str, job_ids: list[str], moment: datetime) -> float | None:
    """Seconds from ``moment`` to the first epoch event any of these jobs recorded after it."""
    with _connect(libpq_url) as conn:
        row = conn.execute("SELECT min(created_at) FROM job_events WHERE job_id = ANY(%s) AND type = 'job.epoch' "
                           "AND created_at > %s", (job_ids, moment)).fetchone()
    return (row[0] - moment).total_seconds() if row and row[0] else None


def now() -> datetime:
    return datetime.now(UTC)


def wait_until(predicate: Any, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
