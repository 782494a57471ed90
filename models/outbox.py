"""Waking the webhook delivery when job events (and sweep events) are committed.

Every change to a job writes a ``job_events`` row in the same transaction
(the API on submit and cancel; the worker on claim, each epoch, each finding,
the finish; the reconciler). Rather than a call after each of those commits,
one listener on a session factory collects the events each transaction adds
and, once it has committed, calls ``notify(job_id)`` for every job whose
webhook subscribes to one of them. ``notify`` only enqueues a delivery task:
the table is the outbox, the message a wake-up, so a lost message delays a
delivery (until the next event or the periodic sweep) but loses nothing.
A sweep's own events (``sweep_events``, its request's ``webhook``) wake ``notify_sweep(sweep_id)``
the same way.
"""

import logging
from collections.abc import Callable

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.util import identity_key

from models.tables import Job, JobEvent, Sweep, SweepEvent

_PENDING = "trainyard.webhook_jobs"
_PENDING_SWEEPS = "trainyard.webhook_sweeps"
log = logging.getLogger(__name__)


def _subscribed(session: Session, job_event: JobEvent) -> bool:
    job = session.identity_map.get(identity_key(Job, job_event.job_id))
    if job is None or "spec" not in inspect(job).dict:
        return True  # not at hand without a query: the delivery task decides
    webhook = job.spec.get("webhook")
    return bool(webhook) and str(job_event.type) in webhook.get("events", ())


def _sweep_subscribed(session: Session, sweep_event: SweepEvent) -> bool:
    sweep = session.identity_map.get(identity_key(Sweep, sweep_event.sweep_id))
    if sweep is None or "request" not in inspect(sweep).dict:
        return True  # not at hand without a query: the delivery task decides
    webhook = sweep.request.get("webhook")
    return bool(webhook) and str(sweep_event.type) in webhook.get("events", ())


def notify_after_commit(factory: sessionmaker[Session], notify: Callable[[str], None],
                        notify_sweep: Callable[[str], None] | None = None) -> None:
    """Call ``notify(job_id)`` after each commit that added an event the job's webhook wants (and
    ``notify_sweep(sweep_id)`` for a sweep's events its webhook wants).

    ``notify`` must be quick; its errors are logged, never raised, so a broker
    hiccup cannot fail the training step that wrote the event.
    """

    @event.listens_for(factory, "after_flush")
    def _collect(session: Session, _context: object) -> None:
        for obj in session.new:
            if isinstance(obj, JobEvent) and _subscribed(session, obj):
                session.info.setdefault(_PENDING, set()).add(obj.job_id)
            elif notify_sweep is not None and isinstance(obj, SweepEvent) and _sweep_subscribed(session, obj):
                session.info.setdefault(_PENDING_SWEEPS, set()).add(obj.sweep_id)

    @event.listens_for(factory, "after_commit")
    def _notify(session: Session) -> None:
        for kind, pending, wake in (("job", _PENDING, notify), ("sweep", _PENDING_SWEEPS, notify_sweep)):
            for owner_id in sorted(session.info.pop(pending, ())):
                try:
                    wake(owner_id)  # type: ignore[misc]  (only sweeps' are collected, and only with notify_sweep)
                except Exception as exc:  # noqa: BLE001  (the periodic sweep picks the event up later)
                    log.warning("could not enqueue the webhook delivery of %s %s: %s", kind, owner_id, exc)

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_PENDING, None)
        session.info.pop(_PENDING_SWEEPS, None)
