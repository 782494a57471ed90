"""Prometheus metrics beyond the job counts of ``/metrics`` (api/routers/health.py).

Chosen so that a scrape of an API process tells about the whole service, workers included:

- Request latency is the API process's own: ``RequestMetrics`` times every request and
  labels it with the route *template* (``/v1/jobs/{job_id}``, never the raw path: one
  series per route, not per job) and the status code. Prometheus sums processes.
- What the workers do (epochs, wait and run times, findings, webhook deliveries) is read
  from the database, not counted in worker memory: workers are separate processes, often
  on other hosts, that prometheus_client's multiprocess mode (one shared folder) cannot
  reach. ``ServiceCollector`` follows the append-only ``job_events`` and
  ``webhook_deliveries`` tables from the largest id it has seen (a primary-key range:
  each scrape reads at most ``CATCH_UP`` new rows, a backlog is read over the next
  scrapes), so its counters and histograms are true Prometheus counters: they count
  from the API process's start, like any process's counters. Every API process counts
  the whole service: aggregate these families with ``max``, not ``sum``, or scrape one
  API process for them.
- Gauges (queue depths, running jobs and their heartbeats) are read at each scrape, and so
  are the training workers' job slots, busy and free, from the reports each worker rewrites
  every heartbeat in the shared artifact store (worker/slot_reports.py).
"""

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.queue import TrainingQueue
from broker.tasks import CONTROL_QUEUE, resume_queue
from datastore.artifacts import ArtifactStore
from models.db import utcnow
from models.enums import EventType, JobStatus
from models.lifecycle import trainable
from models.settings import Settings
from models.slot_report import read_reports
from models.tables import Job, JobEvent, WebhookDelivery

log = logging.getLogger(__name__)
CATCH_UP = 5_000  # rows of each table read per scrape at most
# Ids are taken when a row is inserted, rows are seen when their transaction commits: a row
# younger than this may still be joined by one with a smaller id. The cursor waits for them.
SETTLE_S = 5.0
RUNNING_LIMIT = 10_000
EPOCH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
FINISHED = (EventType.succeeded, EventType.failed, EventType.cancelled)


class RequestMetrics:
    """ASGI middleware: ``trainyard_http_request_duration_seconds{method, route, status}``."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.histogram = Histogram("trainyard_http_request_duration_seconds",
                                   "Time to answer an HTTP request (to the end of its body), by route template",
                                   ["method", "route", "status"], registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # an exception that escapes every handler is a 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"  # set by the router that matched
            self.histogram.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)


class ServiceCollector(Collector):
    """The database's and the broker's view of the service, brought up to date at each scrape."""

    def __init__(self, session_factory: sessionmaker[Session], queue: TrainingQueue, settings: Settings) -> None:
        self.session_factory, self.queue = session_factory, queue
        self.worker_reports = ArtifactStore(settings.artifacts).worker_reports_dir()
        self.stale_after_s = settings.running_stale_after_s  # a report this old is a worker that died
        self.queues = [settings.train_queue, resume_queue(settings.train_queue), settings.webhook_queue, CONTROL_QUEUE]
        self._lock = threading.Lock()  # two scrapes at once must not count the same rows twice
        self._event_id: int | None = None  # the cursors: the largest id counted
        self._delivery_id: int | None = None
        self._counted = CollectorRegistry(auto_describe=True)
        self.epochs = Histogram("trainyard_epoch_duration_seconds", "Duration of a training epoch",
                                buckets=EPOCH_BUCKETS, registry=self._counted)
        self.waits = Histogram("trainyard_job_wait_seconds", "Queued (last enqueued) to running, per start of a job",
                               buckets=JOB_BUCKETS, registry=self._counted)
        self.runs = Histogram("trainyard_job_run_seconds", "Running (last start) to finished, per finished job",
                              buckets=JOB_BUCKETS, registry=self._counted)
        self.findings = Counter("trainyard_findings", "Findings raised (preflight, training and verdicts)",
                                ["code", "severity"], registry=self._counted)
        self.finished = Counter("trainyard_jobs_finished", "Jobs that finished, by how", ["status"],
                                registry=self._counted)
        self.deliveries = Counter("trainyard_webhook_deliveries", "Webhook delivery attempts, by outcome",
                                  ["outcome"], registry=self._counted)

    def start(self) -> None:
        """Count from now on: what happened before this process started is in no counter (a counter reset)."""
        try:
            with self._lock, self.session_factory() as session:
                self._start(session)
        except Exception as exc:  # noqa: BLE001  (the database away at start-up: the first scrape starts them)
            log.warning("service metrics start counting at the first scrape: %s", exc)

    def _start(self, session: Session) -> None:
        if self._event_id is None:
            self._event_id = session.scalar(select(func.max(JobEvent.id))) or 0
            self._delivery_id = session.scalar(select(func.max(WebhookDelivery.id))) or 0

    def collect(self) -> Iterator[Metric]:
        with self._lock, self.session_factory() as session:
            self._start(session)
            self._count_events(session)
            self._count_deliveries(session)
            running = list(_running(session))
        yield from self._counted.collect()
        yield from running
        yield self._worker_slots()
        depths = self._queue_depths()
        if depths is not None:
            yield depths

    def _count_events(self, session: Session) -> None:
        settled = utcnow() - timedelta(seconds=SETTLE_S)
        events = session.execute(
            select(JobEvent.id, JobEvent.job_id, JobEvent.type, JobEvent.data, JobEvent.created_at)
            .where(JobEvent.id > self._event_id, JobEvent.created_at <= settled)
            .order_by(JobEvent.id).limit(CATCH_UP)).all()
        for event_id, job_id, kind, data, created_at in events:
            run = "cv_folds" in data  # a cross-validation run's own status: its folds are the jobs counted
            if kind is EventType.epoch and isinstance(data.get("duration_s"), int | float):
                self.epochs.observe(data["duration_s"])
            elif kind is EventType.finding and not data.get("resolved"):
                finding = data.get("finding") or {}
                self.findings.labels(str(finding.get("code")), str(finding.get("severity"))).inc()
            elif kind is EventType.started and not run:
                self._observe_since(session, self.waits, job_id, event_id, EventType.queued, created_at)
            elif kind in FINISHED and not run:
                self.finished.labels(kind.value.removeprefix("job.")).inc()
                self._observe_since(session, self.runs, job_id, event_id, EventType.started, created_at)
            self._event_id = event_id

    @staticmethod
    def _observe_since(session: Session, histogram: Histogram, job_id: str, before_id: int, kind: EventType,
                       at: datetime) -> None:
        """The time from the job's last ``kind`` event before ``before_id`` to ``at`` (index: job_id, id)."""
        since = session.scalar(select(JobEvent.created_at).where(
            JobEvent.job_id == job_id, JobEvent.id < before_id, JobEvent.type == kind)
            .order_by(JobEvent.id.desc()).limit(1))
        if since is not None:  # a job cancelled while queued never started: no run time
            histogram.observe(max(0.0, (at - since).total_seconds()))

    def _count_deliveries(self, session: Session) -> None:
        settled = utcnow() - timedelta(seconds=SETTLE_S)
        rows = session.execute(select(WebhookDelivery.id, WebhookDelivery.outcome)
                               .where(WebhookDelivery.id > self._delivery_id, WebhookDelivery.attempted_at <= settled)
                               .order_by(WebhookDelivery.id).limit(CATCH_UP)).all()
        for delivery_id, outcome in rows:
            self.deliveries.labels(outcome.value).inc()
            self._delivery_id = delivery_id

    def _worker_slots(self) -> Metric:
        family = GaugeMetricFamily("trainyard_worker_slots", "Job slots of each training worker, busy or free",
                                   labels=["worker", "kind", "state"])
        for report in read_reports(self.worker_reports, self.stale_after_s):
            family.add_metric([report.worker, report.kind, "busy"], report.busy)
            family.add_metric([report.worker, report.kind, "free"], report.free)
        return family

    def _queue_depths(self) -> Metric | None:
        family = GaugeMetricFamily("trainyard_queue_depth", "Messages waiting in a broker queue", labels=["queue"])
        try:
            with self.queue.celery.connection_for_write() as connection:
                channel = connection.default_channel
                for name in self.queues:
                    try:
                        depth = channel.queue_declare(queue=name, passive=True).message_count
                    except Exception:  # noqa: BLE001  (kombu: a queue that holds nothing does not exist)
                        depth = 0
                    family.add_metric([name], depth)
        except Exception as exc:  # noqa: BLE001  (the broker away: /readyz says so; the other metrics stand)
            log.warning("queue depths not measured: %s", exc)
            return None
        return family


def _host(worker: str | None) -> str:
    """``host:pid`` → host: a label that stays the same across worker restarts."""
    return (worker or "unknown").rpartition(":")[0] or (worker or "unknown")


def _running(session: Session) -> Iterator[Metric]:
    rows = session.execute(select(Job.worker, Job.heartbeat_at).where(Job.status == JobStatus.running, trainable())
                           .limit(RUNNING_LIMIT)).all()
    now = utcnow()
    running: dict[str, int] = {}
    stalest: dict[str, float] = {}
    for worker, beat in rows:
        host = _host(worker)
        running[host] = running.get(host, 0) + 1
        if beat is not None:
            stalest[host] = max(stalest.get(host, 0.0), (now - beat).total_seconds())
    yield _by_host("trainyard_running_jobs", "Jobs running, by worker host", running)
    # A live worker beats every heartbeat_interval_s; an age well past running_stale_after_s is a dead one.
    yield _by_host("trainyard_running_job_heartbeat_age_seconds",
                   "Seconds since the stalest heartbeat among a host's running jobs", stalest)


def _by_host(name: str, documentation: str, values: dict[str, Any]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["host"])
    for host, value in sorted(values.items()):
        family.add_metric([host], value)
    return family
