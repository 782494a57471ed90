"""The database is the source of truth; the broker only carries job ids.

``reconcile`` finds jobs whose message must have been lost (queued for too
long, or running with a heartbeat gone stale because their worker died) and
queues them again. Claims are idempotent, so an extra message is harmless.
"""

import logging
from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from models import lifecycle
from models.db import transaction
from models.enums import JobStatus
from models.settings import Settings
from models.tables import Job
from worker.job_store import stale_cutoff

log = logging.getLogger(__name__)


def reconcile(factory: sessionmaker[Session], settings: Settings, send: Callable[[str], None]) -> list[str]:
    """Re-enqueue lost jobs; fail those that lost their worker too often. Returns the re-enqueued ids."""
    requeued: list[str] = []
    with transaction(factory) as session:
        lost = session.scalars(
            select(Job)
            .where(
                or_(
                    (Job.status == JobStatus.queued) & (Job.enqueued_at < stale_cutoff(settings.queued_stale_after_s)),
                    (Job.status == JobStatus.running) & (Job.heartbeat_at < stale_cutoff(settings.running_stale_after_s)),
                )
            )
            .with_for_update(skip_locked=True)
            .limit(500)
        ).all()
        for job in lost:  # each transition checks the state it leaves: a job that moved meanwhile is left alone
            if job.cancel_requested:  # its worker died while stopping: it is cancelled
                lifecycle.cancel_lost(session, job)
            elif job.status is JobStatus.running and job.attempts >= settings.max_attempts:
                lifecycle.fail(session, job, error={
                    "type": "WorkerLost", "message": f"the worker running this job was lost {job.attempts} times"})
            elif lifecycle.requeue(session, job):
                requeued.append(job.id)
    for job_id in requeued:  # after the commit, so a worker never sees the old state
        send(job_id)
    if requeued:
        log.warning("re-enqueued %d lost job(s): %s", len(requeued), requeued)
    return requeued
