"""The worker's writes to the jobs table: claim, heartbeat, epochs, finish.

Each function is one short transaction, so the API sees progress at once and
a crash loses at most the epoch in flight.
"""

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction, utcnow
from models.enums import EventType, JobStatus, StopReason
from models.events import job_event
from models.tables import EpochMetric, Job


def claim(factory: sessionmaker[Session], job_id: str, *, worker: str, stale_before: datetime) -> Job | None:
    """Move a queued job (or a running one whose worker stopped beating) to running.

    ``worker`` names this process; a job it already holds is taken back (a retry
    after a database outage interrupted the previous attempt).

    Exactly one delivery of a job's message wins; duplicates get None and do nothing.
    """
    now = utcnow()
    with transaction(factory) as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.cancel_requested.is_(False),
                or_(
                    Job.status == JobStatus.queued,
                    (Job.status == JobStatus.running) & (Job.heartbeat_at < stale_before),
                    # One training at a time per process: a job this process holds is a dead attempt.
                    (Job.status == JobStatus.running) & (Job.worker == worker),
                ),
            )
            .values(status=JobStatus.running, attempts=Job.attempts + 1, heartbeat_at=now, worker=worker)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return None
        job = session.get_one(Job, job_id)
        if job.started_at is None:
            job.started_at = now
        session.add(job_event(job, EventType.started, attempt=job.attempts))
        return job


def held_elsewhere(factory: sessionmaker[Session], job_id: str) -> bool:
    """Whether another worker is (as far as its heartbeat says) training this job."""
    with transaction(factory) as session:
        return session.scalar(select(Job.status).where(Job.id == job_id)) is JobStatus.running


def beat(factory: sessionmaker[Session], job_id: str) -> None:
    """Refresh the heartbeat (the heartbeat thread's one write)."""
    with transaction(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow()))


def cancel_requested(factory: sessionmaker[Session], job_id: str) -> bool:
    """Whether the user asked to cancel: a read, polled during training."""
    with transaction(factory) as session:
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def json_number(value: Any) -> float | None:
    """JSON has no NaN or infinity: they are stored as null."""
    number = float(value)
    return number if math.isfinite(number) else None


def _upsert(session: Session) -> Any:
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(EpochMetric)


def record_epoch(
    factory: sessionmaker[Session], job_id: str, *, epoch: int, logs: dict[str, Any], duration_s: float, monitor: str
) -> None:
    metrics = {key: json_number(value) for key, value in logs.items()}
    with transaction(factory) as session:
        insert = _upsert(session).values(
            job_id=job_id, epoch=epoch, metrics=metrics, duration_s=duration_s, recorded_at=utcnow()
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["job_id", "epoch"],
                set_={"metrics": insert.excluded.metrics, "duration_s": insert.excluded.duration_s,
                      "recorded_at": insert.excluded.recorded_at},
            )
        )
        job = session.get_one(Job, job_id)
        job.epoch = epoch
        job.heartbeat_at = utcnow()
        job.last_metrics = {"epoch": epoch, **metrics}
        current = metrics.get(monitor)
        best = (job.best_metrics or {}).get(monitor)
        if current is not None and (best is None or current < best or job.best_metrics.get("epoch", 0) >= epoch):
            job.best_metrics = {"epoch": epoch, **metrics}
        session.add(job_event(job, EventType.epoch, metrics=metrics, duration_s=duration_s))


def add_finding(factory: sessionmaker[Session], job_id: str, finding: dict[str, Any]) -> None:
    with transaction(factory) as session:
        job = session.get_one(Job, job_id)
        job.findings = [*job.findings, finding]
        session.add(job_event(job, EventType.finding, finding=finding))


def resolve_finding(factory: sessionmaker[Session], job_id: str, code: str, epoch: int) -> None:
    """A training finding that later epochs contradicted: kept, as info, with the epoch it resolved."""
    with transaction(factory) as session:
        job = session.get_one(Job, job_id)
        updated = []
        for finding in job.findings:
            if finding["code"] == code and finding["phase"] == "training" and finding["severity"] != "info":
                finding = {**finding, "severity": "info", "evidence": {**finding["evidence"], "resolved_epoch": epoch},
                           "message": f"{finding['message']} (Resolved at epoch {epoch}: the model got moving.)"}
                session.add(job_event(job, EventType.finding, finding=finding, resolved=True))
            updated.append(finding)
        job.findings = updated


def set_data_summary(factory: sessionmaker[Session], job_id: str, summary: dict[str, Any]) -> None:
    with transaction(factory) as session:
        session.get_one(Job, job_id).data_summary = summary


def finish(
    factory: sessionmaker[Session],
    job_id: str,
    *,
    status: JobStatus,
    stop_reason: StopReason,
    test_metrics: dict[str, Any] | None = None,
    model_path: str | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    with transaction(factory) as session:
        job = session.get_one(Job, job_id)
        job.status = status
        job.stop_reason = stop_reason
        job.finished_at = utcnow()
        job.test_metrics = {k: json_number(v) for k, v in test_metrics.items()} if test_metrics else None
        job.model_path = model_path
        job.error = error
        session.add(job_event(job, EventType.for_status(status), test_metrics=job.test_metrics, error=error))


def release(factory: sessionmaker[Session], job_id: str, *, holder_is: Callable[[str | None], bool], reason: str) -> bool:
    """Give a running job back to the queue when ``holder_is(its holder)``: the holder
    is this process stopping (a graceful shutdown) or a process known dead.

    Returns whether it was released; the caller then sends its id again. A job
    whose cancel was asked is cancelled instead, as its worker would have done.
    """
    with transaction(factory) as session:
        job = session.scalars(
            select(Job).where(Job.id == job_id, Job.status == JobStatus.running).with_for_update()
        ).one_or_none()
        if job is None or not holder_is(job.worker):
            return False
        if job.cancel_requested:
            job.status, job.stop_reason, job.finished_at = JobStatus.cancelled, StopReason.cancelled, utcnow()
            session.add(job_event(job, EventType.cancelled))
            return False
        job.status, job.enqueued_at = JobStatus.queued, utcnow()
        session.add(job_event(job, EventType.queued, requeued=True, reason=reason))
        return True


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
