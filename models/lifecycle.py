"""A job's lifecycle: every change of ``Job.status``, and nowhere else.

    transition    leaves             to                 who
    create        (new)              queued             API submit, auto-retry
    claim         queued, running*   running            worker (* abandoned: see ``claim``)
    cancel        queued             cancelled          API (a running job is only flagged:
                                                        its worker stops and finishes it)
    finish        running (token)    succeeded/failed/cancelled   worker
    release       running (token)    queued             worker, graceful stop
    requeue       queued, running    queued             reconciler (message or worker lost)
    fail          queued, running    failed             reconciler (worker lost too often)
    cancel_lost   queued, running    cancelled          reconciler (cancelled, worker died)

Each transition is one conditional ``UPDATE`` whose ``WHERE`` names the states
it may leave (and, for the worker's writes, the claim that must still be the
job's), adds its event to the same transaction, and reports whether it
happened: a transition that lost a race changes nothing and writes no event.

Fencing: ``claim`` increments ``Job.claim``; the number it returns is the
worker's token. Every later write of that worker (epochs, findings, heartbeat,
finish) holds only while the job is running under that very token, so a
worker whose job was requeued, failed or taken over writes nothing more.

Cross-validation (``data.folds``): a run is a parent row that no worker ever claims (``trainable``)
and K fold jobs that live the transitions above. Every transition of a fold moves its parent to
``models.cv.cv_status`` of its folds, in the same transaction and under the parent's row lock
(``_settle_parent``): the parent is finished by the transition that ends its last fold, whoever
makes it (worker, API cancel, reconciler), and reading the folds again never counts twice.

Functions take the caller's session and do not commit: the API commits with
its unit of work, the reconciler once per sweep, the worker once per write.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from models.cv import STOP_REASONS, cv_status
from models.db import lock_until_commit, utcnow
from models.enums import EventType, JobStatus, StopReason
from models.events import job_event
from models.holder import Holder, is_dead
from models.tables import Job

QUEUED, RUNNING = JobStatus.queued, JobStatus.running


class QueueFull(Exception):
    """The tenant already has its maximum of queued jobs."""


class ClaimLost(Exception):
    """This worker's claim is no longer the job's: it must stop and write nothing more."""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a job: the token that fences its writes."""

    job_id: str
    token: int

    @classmethod
    def of(cls, job: Job) -> "Claim":
        return cls(job.id, job.claim)


def holding(claim: Claim) -> ColumnElement[bool]:
    """The ``WHERE`` of every write a worker makes under ``claim``."""
    return and_(Job.id == claim.job_id, Job.status == RUNNING, Job.claim == claim.token)


def fenced(session: Session, claim: Claim) -> Job:
    """The job, locked for this transaction, if ``claim`` still holds it; else ClaimLost."""
    job = session.scalar(select(Job).where(holding(claim)).with_for_update().execution_options(populate_existing=True))
    if job is None:
        raise ClaimLost(claim.job_id)
    return job


def holder_is_dead(job: Job) -> bool:
    """Whether the process that holds this running job is certainly dead (see ``models.holder``)."""
    return job.status is RUNNING and is_dead(Holder.from_json(job.holder))


def _update(session: Session, job_id: str, leaving: ColumnElement[bool], values: dict[str, Any]) -> Job | None:
    """The one shape of every transition: a conditional UPDATE; the job as it is now, or None.
    A fold's transition moves its CV parent too, in the same transaction."""
    result = session.execute(
        update(Job).where(Job.id == job_id, leaving).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    job = session.get_one(Job, job_id, populate_existing=True)
    if job.cv_parent_id is not None and "status" in values:
        _settle_parent(session, job.cv_parent_id)
    return job


def _move(session: Session, job_id: str, leaving: ColumnElement[bool], event: EventType, values: dict[str, Any],
          **event_data: Any) -> Job | None:
    """A transition and its event, in the caller's transaction."""
    job = _update(session, job_id, leaving, values)
    if job is not None:
        session.add(job_event(job, event, **event_data))
    return job


def trainable() -> ColumnElement[bool]:
    """Jobs a worker may train: all but cross-validation parents, which only summarize their folds."""
    return Job.cv_folds.is_(None)


def _settle_parent(session: Session, parent_id: str) -> None:
    """Move a CV parent to the status its folds give it (``models.cv.cv_status``), with its event."""
    parent = session.scalar(select(Job).where(Job.id == parent_id).with_for_update()
                            .execution_options(populate_existing=True))
    assert parent is not None and parent.cv_folds is not None
    status = cv_status(list(session.scalars(select(Job.status).where(Job.cv_parent_id == parent_id))))
    if status is parent.status or parent.status.finished:
        return
    now = utcnow()
    values: dict[str, Any] = {"status": status}
    if status is RUNNING:
        values["started_at"] = func.coalesce(Job.started_at, now)
    elif status.finished:
        values.update(stop_reason=STOP_REASONS[status], finished_at=now)
    event = EventType.for_status(status) if status.finished else {
        RUNNING: EventType.started, QUEUED: EventType.queued}[status]
    if _update(session, parent_id, Job.status == parent.status, values) is not None:
        session.add(job_event(parent, event, cv_folds=parent.cv_folds))


def lock_submissions(session: Session, tenant: str) -> None:
    """Hold, until the transaction ends, the lock that every submission of ``tenant`` takes:
    count-then-insert is exact only if one submit of a tenant counts at a time."""
    lock_until_commit(session, f"trainyard.submit:{tenant}")


def _make_room(session: Session, tenant: str, *, jobs: int, max_queued: int) -> None:
    """QueueFull unless ``jobs`` more queued jobs fit under the tenant's cap (CV parents do not count:
    their folds do)."""
    lock_submissions(session, tenant)
    queued = session.scalar(select(func.count()).select_from(Job).where(
        Job.tenant == tenant, Job.status == QUEUED, trainable())) or 0
    if queued + jobs > max_queued:
        needs = "" if jobs == 1 else f"; this request needs {jobs} ({jobs} folds)"
        raise QueueFull(f"tenant '{tenant}' already has {queued} queued jobs (the limit is {max_queued}{needs}); "
                        "wait for some to start, or cancel some")


def create(session: Session, job: Job, *, max_queued: int, **event_data: Any) -> Job:
    """Insert ``job`` as queued with its ``job.queued`` event and one event per preflight finding.

    Raises:
        QueueFull: the tenant already has ``max_queued`` queued jobs (nothing is written).
    """
    _make_room(session, job.tenant, jobs=1, max_queued=max_queued)
    return _insert(session, job, **event_data)


def create_cv_run(session: Session, parent: Job, folds: list[Job], *, max_queued: int, **event_data: Any) -> Job:
    """Insert a cross-validation run: ``parent`` (its ``cv_folds`` set; never trained) and its fold jobs,
    all queued, each with its events. The K folds count against the tenant's queued-job cap.

    Raises:
        QueueFull: the K folds do not fit under the cap (nothing is written).
    """
    assert parent.cv_folds == len(folds) and all(f.cv_parent_id == parent.id for f in folds)
    _make_room(session, parent.tenant, jobs=len(folds), max_queued=max_queued)
    _insert(session, parent, **event_data)
    for fold in folds:
        _insert(session, fold, **event_data)
    return parent


def create_job_or_run(session: Session, job: Job, folds: list[Job], *, max_queued: int, **event_data: Any) -> Job:
    """``create_cv_run`` when ``folds`` are given (a spec with ``data.folds``), else ``create``: what every
    maker of jobs from a spec calls (a submit, a sweep's trial)."""
    if folds:
        return create_cv_run(session, job, folds, max_queued=max_queued, **event_data)
    return create(session, job, max_queued=max_queued, **event_data)


def _insert(session: Session, job: Job, **event_data: Any) -> Job:
    job.status = QUEUED
    job.enqueued_at = job.enqueued_at or utcnow()
    session.add(job)
    session.flush()
    session.add(job_event(job, EventType.queued, **event_data))
    for finding in job.findings:
        session.add(job_event(job, EventType.finding, finding=finding))
    return job


def claim(session: Session, job_id: str, *, holder: Holder, stale_before: datetime,
          dead_claim: int | None = None) -> Job | None:
    """queued, or running but abandoned, -> running under a new token (``job.claim``).

    A running job is abandoned when its heartbeat is older than ``stale_before``,
    when its holder has this holder's host and pid (this process after a database
    outage, or a dead one whose pid was reused), or when its claim is
    ``dead_claim``, a claim the caller saw held by a dead process.
    Exactly one of concurrent claims wins; the others get None.
    """
    abandoned = [Job.heartbeat_at < stale_before, Job.worker == holder.name]
    if dead_claim is not None:
        abandoned.append(Job.claim == dead_claim)
    now = utcnow()
    job = _update(
        session, job_id,
        and_(Job.cancel_requested.is_(False), trainable(),
             or_(Job.status == QUEUED, and_(Job.status == RUNNING, or_(*abandoned)))),
        {"status": RUNNING, "attempts": Job.attempts + 1, "claim": Job.claim + 1, "heartbeat_at": now,
         "started_at": func.coalesce(Job.started_at, now), "worker": holder.name, "holder": holder.as_json()},
    )
    if job is not None:
        session.add(job_event(job, EventType.started, attempt=job.attempts))
    return job


def cancel(session: Session, job: Job) -> bool:
    """The user's cancel: queued -> cancelled at once; running -> flagged, its worker stops
    at the next epoch and finishes it cancelled. False when the job had already finished."""
    done = _move(session, job.id, Job.status == QUEUED, EventType.cancelled, {
        "status": JobStatus.cancelled, "stop_reason": StopReason.cancelled, "finished_at": utcnow(),
        "cancel_requested": True})
    if done is None:
        flagged = session.execute(update(Job).where(Job.id == job.id, Job.status == RUNNING)
                                  .values(cancel_requested=True).execution_options(synchronize_session=False))
        if flagged.rowcount != 1:
            return False
    session.refresh(job)
    return True


def cancel_cv_run(session: Session, parent: Job) -> bool:
    """Cancel a cross-validation run: each unfinished fold as ``cancel`` does (queued ones at once, running
    ones flagged); the parent follows its folds. False when every fold had already finished.

    The folds are changed before the parent is locked, as a worker ending a fold does, so the two never
    wait on each other's locks in opposite orders."""
    # All folds locked first (in id order): a reconciler skips them meanwhile instead of holding one of them
    # while it waits for the parent that this cancel locks after its first fold.
    folds = session.scalars(select(Job).where(Job.cv_parent_id == parent.id).order_by(Job.id)
                            .with_for_update().execution_options(populate_existing=True)).all()
    cancelled = [cancel(session, fold) for fold in folds if not fold.status.finished]
    session.execute(update(Job).where(Job.id == parent.id).values(cancel_requested=True)
                    .execution_options(synchronize_session=False))
    session.refresh(parent)
    return any(cancelled)


def _lost(job: Job) -> ColumnElement[bool]:
    # What the reconciler saw: queued, or running under the claim it judged lost (not one taken since).
    return or_(Job.status == QUEUED, and_(Job.status == RUNNING, Job.claim == job.claim))


def requeue(session: Session, job: Job) -> bool:
    """Queued again (the reconciler: its message or its worker was lost); the old claim is void."""
    return _move(session, job.id, _lost(job), EventType.queued, {"status": QUEUED, "enqueued_at": utcnow()},
                 requeued=True) is not None


def fail(session: Session, job: Job, *, error: dict[str, Any]) -> bool:
    """Failed by the system (the reconciler: its worker was lost too often)."""
    return _end(session, job.id, _lost(job), JobStatus.failed, StopReason.error, error=error)


def cancel_lost(session: Session, job: Job) -> bool:
    """Cancelled by the system: the user cancelled and the worker died while stopping."""
    return _end(session, job.id, _lost(job), JobStatus.cancelled, StopReason.cancelled)


def finish(session: Session, claim: Claim, *, status: JobStatus, stop_reason: StopReason,
           test_metrics: dict[str, Any] | None = None, model_path: str | None = None,
           error: dict[str, Any] | None = None) -> bool:
    """The worker's end of the job, only while ``claim`` still holds it."""
    return _end(session, claim.job_id, holding(claim), status, stop_reason, test_metrics=test_metrics,
                model_path=model_path, error=error)


def _end(session: Session, job_id: str, leaving: ColumnElement[bool], status: JobStatus, stop_reason: StopReason,
         *, test_metrics: dict[str, Any] | None = None, model_path: str | None = None,
         error: dict[str, Any] | None = None) -> bool:
    assert status.finished
    values = {"status": status, "stop_reason": stop_reason, "finished_at": utcnow(), "error": error,
              "test_metrics": test_metrics, "model_path": model_path}
    return _move(session, job_id, leaving, EventType.for_status(status), values,
                 test_metrics=test_metrics, error=error) is not None


def release(session: Session, claim: Claim, *, reason: str = "worker_stopping") -> bool:
    """Hand a job back (a graceful stop): running under ``claim`` -> queued, to be resumed
    from its checkpoint by the next claim. A hand-back is not a lost worker: it does not
    count against ``max_attempts``. Its ``job.queued`` event says why (``reason``)."""
    return _move(session, claim.job_id, holding(claim), EventType.queued,
                 {"status": QUEUED, "enqueued_at": utcnow(), "attempts": Job.attempts - 1},
                 released=True, reason=reason) is not None

