"""The database is the source of truth; the broker only carries job ids.

``reconcile`` finds jobs whose message must have been lost (queued for too
long, queued when the broker lost its queues, or running with a heartbeat gone
stale or a holder process known dead because their worker died) and queues them
again, oldest submission first, so that they keep their place ahead of later
submissions. Claims are idempotent, so an extra message is harmless.
"""

import logging
import socket
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import SendJob
from models import lifecycle
from models.db import transaction
from models.enums import JobStatus
from models.settings import Settings
from models.tables import Job
from worker.job_store import stale_cutoff

log = logging.getLogger(__name__)


def reconcile(factory: sessionmaker[Session], settings: Settings, send: SendJob, *,
              broker_was_reset: bool = False) -> list[str]:
    """Re-enqueue lost jobs; fail those that lost their worker too often. Returns the re-enqueued ids.

    Args:
        broker_was_reset: the broker lost its queues (restarted without
            persistence): every queued job's message is gone, re-send them all now.
    """
    requeued: list[tuple[str, Mapping[str, Any] | None]] = []
    stale_heartbeat = stale_cutoff(settings.running_stale_after_s)
    queued_lost = Job.status == JobStatus.queued
    if not broker_was_reset:
        queued_lost &= Job.enqueued_at < stale_cutoff(settings.queued_stale_after_s)
    with transaction(factory) as session:
        candidates = session.scalars(
            select(Job)
            .where(
                lifecycle.trainable(),
                or_(
                    queued_lost,
                    (Job.status == JobStatus.running) & (Job.heartbeat_at < stale_heartbeat),
                    # Held by a process of this host: taken back at once if that process is gone.
                    (Job.status == JobStatus.running) & Job.worker.startswith(f"{socket.gethostname()}:"),
                )
            )
            .order_by(Job.created_at, Job.id)
            .with_for_update(skip_locked=True)
            .limit(500)
        ).all()
        # Each transition checks the state it leaves: a job that moved meanwhile is left alone.
        lost = [job for job in candidates if job.status is JobStatus.queued or lifecycle.holder_is_dead(job)
                or job.heartbeat_at is None or job.heartbeat_at < stale_heartbeat]
        for job in lost:
            if job.cancel_requested:  # its worker died while stopping: it is cancelled
                lifecycle.cancel_lost(session, job)
            elif job.status is JobStatus.running and job.attempts >= settings.max_attempts:
                lifecycle.fail(session, job, error={
                    "type": "WorkerLost", "message": f"the worker running this job was lost {job.attempts} times"})
            elif lifecycle.requeue(session, job):
                requeued.append((job.id, job.spec.get("resources")))
    for job_id, resources in requeued:  # after the commit, so a worker never sees the old state
        send(job_id, resources)
    ids = [job_id for job_id, _ in requeued]
    if ids:
        log.warning("re-enqueued %d lost job(s): %s", len(ids), ids)
    if waiting := stalled(factory, settings):
        log.error("training looks stalled: %d job(s) submitted over %.0f s ago are still queued and no job is "
                  "running; are the training workers up and consuming their queue?", waiting,
                  settings.queued_stale_after_s)
    return ids


def stalled(factory: sessionmaker[Session], settings: Settings) -> int:
    """How many jobs have waited longer than ``queued_stale_after_s`` while no job runs at all:
    the sign of workers that are up but train nothing (0 when the queue moves)."""
    old = stale_cutoff(settings.queued_stale_after_s)
    with transaction(factory) as session:
        trained = lifecycle.trainable()  # a CV parent runs while its folds do; it is never trained itself
        if session.scalar(select(Job.id).where(Job.status == JobStatus.running, trained).limit(1)) is not None:
            return 0
        return session.scalar(select(func.count()).select_from(Job).where(
            Job.status == JobStatus.queued, Job.created_at < old, trained)) or 0
