"""Ensemble builds whose message or worker was lost are queued again (the reconcile task runs this
beside ``worker.reconciler.reconcile``): the database holds the builds, the broker only their ids.

Lost: queued longer than ``queued_stale_after_s`` (or at all, when the broker lost its queues),
or running with a heartbeat older than ``running_stale_after_s`` (its worker died). A build
lost ``max_attempts`` times fails instead. Claims are fenced, so an extra message is harmless.
"""

import logging
from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from models import ensemble_lifecycle
from models.db import transaction
from models.enums import EnsembleStatus
from models.settings import Settings
from models.tables import Ensemble
from worker.job_store import stale_cutoff

log = logging.getLogger(__name__)


def reconcile_ensembles(factory: sessionmaker[Session], settings: Settings, send: Callable[[str], None], *,
                        broker_was_reset: bool = False) -> list[str]:
    """Re-send lost builds; fail those that lost their worker too often. Returns the re-sent ids."""
    queued_lost = Ensemble.status == EnsembleStatus.queued
    if not broker_was_reset:
        queued_lost &= Ensemble.enqueued_at < stale_cutoff(settings.queued_stale_after_s)
    running_lost = (Ensemble.status == EnsembleStatus.running) & (
        Ensemble.heartbeat_at < stale_cutoff(settings.running_stale_after_s))
    requeued = []
    with transaction(factory) as session:
        lost = session.scalars(select(Ensemble).where(or_(queued_lost, running_lost)).order_by(Ensemble.id)
                               .with_for_update(skip_locked=True).limit(500)).all()
        for ensemble in lost:
            if ensemble.status is EnsembleStatus.running and ensemble.attempts >= settings.max_attempts:
                ensemble_lifecycle.give_up(session, ensemble, error={
                    "type": "WorkerLost", "message": f"the worker building it was lost {ensemble.attempts} times"})
            elif ensemble_lifecycle.requeue(session, ensemble):
                requeued.append(ensemble.id)
    for ensemble_id in requeued:  # after the commit, so a worker never sees the old state
        send(ensemble_id)
    if requeued:
        log.warning("re-sent %d lost ensemble build(s): %s", len(requeued), requeued)
    return requeued
