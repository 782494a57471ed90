"""The worker's writes to the jobs table: claim, heartbeat, epochs, findings, finish.

Each function is one short transaction, so the API sees progress at once and
a crash loses at most the epoch in flight. Every write after the claim is
fenced by it (``models.lifecycle``): once the job was requeued, failed or
taken over, the write changes nothing and raises ``ClaimLost`` (``finish`` and
``release`` return False), so a worker that lost its job writes nothing more.
"""

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models import lifecycle
from models.db import transaction, utcnow
from models.enums import EventType, JobStatus, StopReason
from models.events import job_event
from models.holder import Holder, this_process
from models.lifecycle import Claim, ClaimLost
from models.tables import EpochMetric, Job


def claim(factory: sessionmaker[Session], job_id: str, *, stale_before: datetime,
          holder: Holder | None = None) -> Job | None:
    """Take the job for ``holder`` (this process by default); ``Claim.of(job)`` is the token.

    A running job is taken when its heartbeat is older than ``stale_before``, when
    this process held it (a retry after a database outage), or at once when its
    holder is known dead (``lifecycle.holder_is_dead``). Exactly one delivery of a
    job's message wins; duplicates get None and do nothing.
    """
    holder = holder or this_process()
    with transaction(factory) as session:
        job = lifecycle.claim(session, job_id, holder=holder, stale_before=stale_before)
        if job is not None:
            return job
        current = session.get(Job, job_id)
        if current is None or not lifecycle.holder_is_dead(current):
            return None
        return lifecycle.claim(session, job_id, holder=holder, stale_before=stale_before, dead_claim=current.claim)


def held_elsewhere(factory: sessionmaker[Session], job_id: str) -> bool:
    """Whether another worker is (as far as its heartbeat says) training this job."""
    with transaction(factory) as session:
        # A CV parent runs while its folds do, but no worker holds it: a stray message for it is dropped.
        return session.scalar(select(Job.status).where(Job.id == job_id, lifecycle.trainable())) is JobStatus.running


def resources(factory: sessionmaker[Session], job_id: str) -> dict[str, Any] | None:
    """The job's ``resources`` block as stored (it names the queue the job is sent to again)."""
    with transaction(factory) as session:
        spec = session.scalar(select(Job.spec).where(Job.id == job_id))
        return None if spec is None else spec.get("resources")


def beat(factory: sessionmaker[Session], claim: Claim) -> bool:
    """Refresh the heartbeat (the heartbeat thread's one write); False once the claim is lost."""
    with transaction(factory) as session:
        result = session.execute(update(Job).where(lifecycle.holding(claim)).values(heartbeat_at=utcnow())
                                 .execution_options(synchronize_session=False))
        return result.rowcount == 1


def cancel_requested(factory: sessionmaker[Session], claim: Claim) -> bool:
    """Whether the user asked to cancel: a read, polled during training. ClaimLost once the claim is lost."""
    with transaction(factory) as session:
        row = session.execute(select(Job.cancel_requested).where(lifecycle.holding(claim))).first()
        if row is None:
            raise ClaimLost(claim.job_id)
        return bool(row.cancel_requested)


def json_number(value: Any) -> float | None:
    """JSON has no NaN or infinity: they are stored as null."""
    number = float(value)
    return number if math.isfinite(number) else None


def _insert(session: Session) -> Any:
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(EpochMetric)


def record_epoch(
    factory: sessionmaker[Session], claim: Claim, *, epoch: int, logs: dict[str, Any], duration_s: float, monitor: str
) -> bool:
    """Write one epoch's row, progress and ``job.epoch`` event; False (and nothing written) when
    the epoch is already recorded.

    An epoch is recorded before it is checkpointed, so a run resumed from the
    previous checkpoint may train a recorded epoch again: the first record stands,
    and the curve and the events hold every epoch exactly once.
    """
    metrics = {key: json_number(value) for key, value in logs.items()}
    with transaction(factory) as session:
        job = lifecycle.fenced(session, claim)
        inserted = session.execute(
            _insert(session)
            .values(job_id=claim.job_id, epoch=epoch, metrics=metrics, duration_s=duration_s, recorded_at=utcnow())
            .on_conflict_do_nothing(index_elements=["job_id", "epoch"])
            .returning(EpochMetric.id)
        ).first()
        if inserted is None:
            return False
        job.epoch = epoch
        job.heartbeat_at = utcnow()
        job.last_metrics = {"epoch": epoch, **metrics}
        current = metrics.get(monitor)
        best = (job.best_metrics or {}).get(monitor)
        if current is not None and (best is None or current < best or job.best_metrics.get("epoch", 0) >= epoch):
            job.best_metrics = {"epoch": epoch, **metrics}
        session.add(job_event(job, EventType.epoch, metrics=metrics, duration_s=duration_s))
        return True


def add_finding(factory: sessionmaker[Session], claim: Claim, finding: dict[str, Any]) -> bool:
    """Add a finding and its event; False when the job already has this code in this phase
    (a resumed run raising again what it raised before it was interrupted)."""
    with transaction(factory) as session:
        job = lifecycle.fenced(session, claim)
        if any(f["code"] == finding["code"] and f["phase"] == finding["phase"] for f in job.findings):
            return False
        job.findings = [*job.findings, finding]
        session.add(job_event(job, EventType.finding, finding=finding))
        return True


def resolve_finding(factory: sessionmaker[Session], claim: Claim, code: str, epoch: int) -> None:
    """A training finding that later epochs contradicted: kept, as info, with the epoch it resolved."""
    with transaction(factory) as session:
        job = lifecycle.fenced(session, claim)
        updated = []
        for finding in job.findings:
            if finding["code"] == code and finding["phase"] == "training" and finding["severity"] != "info":
                finding = {**finding, "severity": "info", "evidence": {**finding["evidence"], "resolved_epoch": epoch},
                           "message": f"{finding['message']} (Resolved at epoch {epoch}: the model got moving.)"}
                session.add(job_event(job, EventType.finding, finding=finding, resolved=True))
            updated.append(finding)
        job.findings = updated


def set_data_summary(factory: sessionmaker[Session], claim: Claim, summary: dict[str, Any]) -> None:
    """Add ``summary``'s keys to the job's data summary (the split before training, how it ran after it)."""
    with transaction(factory) as session:
        job = lifecycle.fenced(session, claim)
        job.data_summary = {**(job.data_summary or {}), **summary}


def finish(
    factory: sessionmaker[Session],
    claim: Claim,
    *,
    status: JobStatus,
    stop_reason: StopReason,
    test_metrics: dict[str, Any] | None = None,
    model_path: str | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """End the job; False (nothing written) when the claim was lost meanwhile."""
    metrics = {k: json_number(v) for k, v in test_metrics.items()} if test_metrics else None
    with transaction(factory) as session:
        return lifecycle.finish(session, claim, status=status, stop_reason=stop_reason, test_metrics=metrics,
                                model_path=model_path, error=error)


def release(factory: sessionmaker[Session], claim: Claim) -> bool:
    """Hand the job back to the queue (a graceful stop); False when the claim was lost meanwhile."""
    with transaction(factory) as session:
        return lifecycle.release(session, claim)


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
