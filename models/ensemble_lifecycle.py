"""An ensemble's lifecycle: every change of ``Ensemble.status``, and nowhere else.

    transition   leaves                  to                   who
    create       (new)                   queued               API
    claim        queued, running (stale) running              worker
    finish       running (token)         succeeded/failed     worker
    requeue      queued, running (stale) queued               reconciler (message or worker lost)
    give_up      running (stale)         failed               reconciler (worker lost too often)

As for jobs (``models.lifecycle``): each transition is one conditional ``UPDATE`` that
reports whether it happened, and the worker's writes hold only under the claim token
its claim returned. Building an ensemble again from the start gives the same ensemble
(the members' models and splits are fixed), so a redelivered message may simply rebuild.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from models.db import lock_until_commit, utcnow
from models.enums import EnsembleStatus
from models.tables import Ensemble

QUEUED, RUNNING = EnsembleStatus.queued, EnsembleStatus.running


@dataclass(frozen=True)
class EnsembleClaim:
    ensemble_id: str
    token: int


def _update(session: Session, ensemble_id: str, leaving: ColumnElement[bool], values: dict[str, Any]) -> bool:
    result = session.execute(update(Ensemble).where(Ensemble.id == ensemble_id, leaving).values(**values)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def holding(claim: EnsembleClaim) -> ColumnElement[bool]:
    return and_(Ensemble.status == RUNNING, Ensemble.claim == claim.token)


class TooManyBuilds(Exception):
    """The tenant already has its maximum of ensembles waiting or being built."""


def create(session: Session, ensemble: Ensemble, *, max_unfinished: int) -> Ensemble:
    """Insert ``ensemble`` as queued (the column's default: a new row is never in another state).

    Raises:
        TooManyBuilds: the tenant has ``max_unfinished`` ensembles queued or running (nothing is written).
    """
    if ensemble.status not in (None, QUEUED):
        raise ValueError(f"a new ensemble is queued, not {ensemble.status}")
    lock_until_commit(session, f"trainyard.ensembles:{ensemble.tenant}")  # count-then-insert, one at a time
    unfinished = session.scalar(select(func.count()).select_from(Ensemble).where(
        Ensemble.tenant == ensemble.tenant, Ensemble.status.in_([QUEUED, RUNNING]))) or 0
    if unfinished >= max_unfinished:
        raise TooManyBuilds(f"tenant '{ensemble.tenant}' already has {unfinished} ensembles queued or being built "
                            f"(the limit is {max_unfinished}); wait for them to finish")
    ensemble.enqueued_at = ensemble.enqueued_at or utcnow()
    session.add(ensemble)
    session.flush()
    return ensemble


def claim(session: Session, ensemble_id: str, *, worker: str, stale_before: datetime) -> EnsembleClaim | None:
    """queued, or running with a heartbeat older than ``stale_before`` (its worker died), -> running
    under a new token. Exactly one of concurrent claims wins; the others get None."""
    now = utcnow()
    abandoned = and_(Ensemble.status == RUNNING, or_(Ensemble.heartbeat_at < stale_before, Ensemble.worker == worker))
    taken = _update(session, ensemble_id, or_(Ensemble.status == QUEUED, abandoned), {
        "status": RUNNING, "claim": Ensemble.claim + 1, "attempts": Ensemble.attempts + 1, "heartbeat_at": now,
        "started_at": func.coalesce(Ensemble.started_at, now), "worker": worker})
    if not taken:
        return None
    return EnsembleClaim(ensemble_id, session.get_one(Ensemble, ensemble_id, populate_existing=True).claim)


def beat(session: Session, claim: EnsembleClaim) -> bool:
    return _update(session, claim.ensemble_id, holding(claim), {"heartbeat_at": utcnow()})


def finish(session: Session, claim: EnsembleClaim, *, status: EnsembleStatus, result: dict[str, Any] | None = None,
           model_path: str | None = None, error: dict[str, Any] | None = None) -> bool:
    """The worker's end of the build, only while ``claim`` still holds it."""
    assert status.finished
    return _update(session, claim.ensemble_id, holding(claim), {
        "status": status, "result": result, "model_path": model_path, "error": error, "finished_at": utcnow()})


def _lost(ensemble: Ensemble) -> ColumnElement[bool]:
    # What the reconciler saw: queued, or running under the claim it judged lost (not one taken since).
    return or_(Ensemble.status == QUEUED, and_(Ensemble.status == RUNNING, Ensemble.claim == ensemble.claim))


def requeue(session: Session, ensemble: Ensemble) -> bool:
    """Queued again: its message or its worker was lost; the old claim is void."""
    return _update(session, ensemble.id, _lost(ensemble), {"status": QUEUED, "enqueued_at": utcnow()})


def give_up(session: Session, ensemble: Ensemble, *, error: dict[str, Any]) -> bool:
    """Failed by the system: the worker building it was lost too often."""
    return _update(session, ensemble.id, _lost(ensemble), {
        "status": EnsembleStatus.failed, "error": error, "finished_at": utcnow()})
