"""Delivering a job's (or a sweep's) webhook events in order. Plain code, no Celery.

``job_events`` is the outbox; ``webhook_cursors`` says how far each job's
webhook got. A delivery task leases the job's cursor (so one task at a time
delivers for a job, whichever worker runs it), POSTs the events after it one
by one, records every attempt in ``webhook_deliveries`` and stops at the first
failure, leaving ``retry_at`` for the retry. Delivery is at least once: a
worker killed between the receiver's 200 and the commit sends that event again,
with the same event id.

A sweep's own events (``sweep_events``, its request's ``webhook``) go the same way, through the
same functions, with their own cursor and delivery tables: an ``Outbox`` names the tables of each
(``JOBS``, ``SWEEPS``); ``owner_id`` is a job's id or a sweep's.
"""

import json
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction, utcnow
from models.enums import DeliveryOutcome
from models.events import envelope, sweep_envelope
from models.settings import Settings
from models.spec import WebhookSpec
from models.sweep_spec import SweepWebhook
from models.tables import (
    Job,
    JobEvent,
    Sweep,
    SweepEvent,
    SweepWebhookCursor,
    SweepWebhookDelivery,
    WebhookCursor,
    WebhookDelivery,
)
from worker import webhook_http
from worker.webhook_http import Attempt, Delivery

Post = Callable[[Delivery], Attempt]
# A scheduled retry may run a little early by this worker's clock (another host's ETA).
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class Outbox:
    """The tables of one kind of webhook owner: its events, its cursors, its delivery records, each
    keyed by the owner's id in the column ``key``, and where the owner keeps its webhook."""

    key: str  # "job_id" or "sweep_id": the owner's id column in the event, cursor and delivery tables
    event: Any  # JobEvent | SweepEvent
    cursor: Any  # WebhookCursor | SweepWebhookCursor
    delivery: Any  # WebhookDelivery | SweepWebhookDelivery
    webhook: Callable[[Session, str], Any]  # the owner's stored webhook (a dict), None when it has none
    spec: type[WebhookSpec]
    envelope: Callable[[Any], dict[str, Any]]

    def of(self, table: Any) -> Any:
        return getattr(table, self.key)


def _job_webhook(session: Session, job_id: str) -> Any:
    spec = session.scalar(select(Job.spec).where(Job.id == job_id))
    return spec.get("webhook") if spec else None


def _sweep_webhook(session: Session, sweep_id: str) -> Any:
    request = session.scalar(select(Sweep.request).where(Sweep.id == sweep_id))
    return request.get("webhook") if request else None


JOBS = Outbox("job_id", JobEvent, WebhookCursor, WebhookDelivery, _job_webhook, WebhookSpec, envelope)
SWEEPS = Outbox("sweep_id", SweepEvent, SweepWebhookCursor, SweepWebhookDelivery, _sweep_webhook, SweepWebhook,
                sweep_envelope)


def backoff_s(attempt: int, settings: Settings) -> float:
    """Wait after failed attempt number ``attempt`` (1-based): base, 2*base, 4*base, ... capped."""
    return min(settings.webhook_retry_base_s * 2 ** (attempt - 1), settings.webhook_retry_max_s)


def deliver_pending(factory: sessionmaker[Session], job_id: str, *, settings: Settings,
                    post: Post | None = None, box: Outbox = JOBS) -> float | None:
    """Deliver what is due for ``job_id`` (a sweep's id with ``box=SWEEPS``), in order.

    Returns the seconds after which to run again when an attempt failed, else
    None: everything due is sent, the head event waits for a retry that an
    earlier task scheduled, or another task is delivering for this job.
    """
    send = post or (lambda d: webhook_http.post(d, timeout_s=settings.webhook_timeout_s,
                                               allow_private=settings.webhook_allow_private))
    owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
    lease = timedelta(seconds=settings.webhook_timeout_s * 3 + 30)
    while _claim(factory, box, job_id, owner, lease):
        try:
            retry_in = _deliver_in_order(factory, box, job_id, owner, lease, settings, send)
        finally:
            _release(factory, box, job_id, owner)
        # A task sent for a new event while we held the lease gave up at once:
        # look again, now that the lease is free, for what it was sent for.
        if retry_in is not None or not _has_pending(factory, box, job_id):
            return retry_in
    return None


def _insert(session: Session, box: Outbox) -> Any:
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(box.cursor)


def _claim(factory: sessionmaker[Session], box: Outbox, owner_id: str, owner: str, lease: timedelta) -> bool:
    now = utcnow()
    with transaction(factory) as session:
        if not box.webhook(session, owner_id):
            return False
        session.execute(_insert(session, box).values(**{box.key: owner_id}, last_event_id=0, attempts=0)
                        .on_conflict_do_nothing(index_elements=[box.key]))
        claimed = session.execute(
            update(box.cursor)
            .where(box.of(box.cursor) == owner_id,
                   or_(box.cursor.lease_until.is_(None), box.cursor.lease_until < now))
            .values(lease_owner=owner, lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        return claimed.rowcount == 1


def _release(factory: sessionmaker[Session], box: Outbox, owner_id: str, owner: str) -> None:
    with transaction(factory) as session:
        session.execute(update(box.cursor)
                        .where(box.of(box.cursor) == owner_id, box.cursor.lease_owner == owner)
                        .values(lease_owner=None, lease_until=None)
                        .execution_options(synchronize_session=False))


def _has_pending(factory: sessionmaker[Session], box: Outbox, owner_id: str) -> bool:
    with transaction(factory) as session:
        cursor = session.get(box.cursor, owner_id)
        if cursor is None or (cursor.retry_at is not None and cursor.retry_at > utcnow()):
            return False
        return bool(session.scalar(select(exists().where(box.of(box.event) == owner_id,
                                                         box.event.id > cursor.last_event_id))))


def _subscribed_after(box: Outbox, owner_id: str, after: int, events: list[str]) -> Select[Any]:
    return (select(box.event).where(box.of(box.event) == owner_id, box.event.id > after, box.event.type.in_(events))
            .order_by(box.event.id))


def _prepare(factory: sessionmaker[Session], box: Outbox, owner_id: str, owner: str,
             lease: timedelta) -> Delivery | None:
    """The next delivery to attempt, or None when there is none now."""
    now = utcnow()
    with transaction(factory) as session:
        cursor = session.get_one(box.cursor, owner_id)
        if cursor.lease_owner != owner:
            return None  # our lease ran out and another task took over
        cursor.lease_until = now + lease
        if cursor.retry_at is not None and cursor.retry_at > now + EARLY_TOLERANCE:
            return None  # the task that failed last scheduled the retry
        webhook = box.spec.model_validate(box.webhook(session, owner_id))
        event = session.scalars(_subscribed_after(box, owner_id, cursor.last_event_id, list(webhook.events))
                                .limit(1)).first()
        if event is None:  # all caught up; events it does not subscribe to are passed over
            latest = session.scalar(select(func.max(box.event.id)).where(box.of(box.event) == owner_id))
            cursor.last_event_id = max(cursor.last_event_id, latest or 0)
            return None
        body = json.dumps(box.envelope(event), separators=(",", ":")).encode()
        return Delivery(url=webhook.url, secret=webhook.secret.get_secret_value(), event_id=event.id,
                        event_type=event.type.value, body=body, attempt=cursor.attempts + 1)


def _deliver_in_order(factory: sessionmaker[Session], box: Outbox, owner_id: str, owner: str, lease: timedelta,
                      settings: Settings, send: Post) -> float | None:
    while (delivery := _prepare(factory, box, owner_id, owner, lease)) is not None:
        attempt = send(delivery)  # outside any transaction: a slow receiver holds no database lock
        go_on, retry_in = _record(factory, box, owner_id, owner, delivery, attempt, settings)
        if not go_on:
            return retry_in
    return None


def _record(factory: sessionmaker[Session], box: Outbox, owner_id: str, owner: str, delivery: Delivery,
            attempt: Attempt, settings: Settings) -> tuple[bool, float | None]:
    """Store the attempt and move the cursor. Returns (go on with the next event, retry after seconds)."""
    now = utcnow()
    with transaction(factory) as session:
        cursor = session.get_one(box.cursor, owner_id, with_for_update=True)
        row = box.delivery(**{box.key: owner_id}, event_id=delivery.event_id, event_type=delivery.event_type,
                           attempt=delivery.attempt, status_code=attempt.status_code, error=attempt.error,
                           duration_ms=attempt.duration_ms, attempted_at=now,
                           outcome=DeliveryOutcome.delivered if attempt.ok else DeliveryOutcome.failed)
        session.add(row)
        if cursor.lease_owner != owner:  # recorded; the task that took over moves the cursor
            return False, None
        if attempt.ok:
            cursor.last_event_id, cursor.attempts, cursor.retry_at = delivery.event_id, 0, None
            return True, None
        if delivery.attempt >= settings.webhook_max_attempts:
            row.outcome = DeliveryOutcome.gave_up
            _skip_backlog(session, box, owner_id, cursor, delivery)
            return True, None
        retry_in = backoff_s(delivery.attempt, settings)
        row.next_attempt_at = now + timedelta(seconds=retry_in)
        cursor.attempts, cursor.retry_at = delivery.attempt, row.next_attempt_at
        return False, retry_in


def _skip_backlog(session: Session, box: Outbox, owner_id: str, cursor: Any, given_up: Delivery) -> None:
    """Give up on the head event and on every event already waiting behind it.

    They all waited through the whole retry schedule; trying each of them for
    as long again would keep a dead receiver's job busy for days. Events that
    happen from now on are delivered as usual.
    """
    webhook = box.spec.model_validate(box.webhook(session, owner_id))
    waiting = session.scalars(_subscribed_after(box, owner_id, given_up.event_id, list(webhook.events))).all()
    session.add_all(box.delivery(**{box.key: owner_id}, event_id=event.id, event_type=event.type, attempt=0,
                                 outcome=DeliveryOutcome.skipped,
                                 error=f"not sent: event {given_up.event_id} was given up before it")
                    for event in waiting)
    cursor.last_event_id = waiting[-1].id if waiting else given_up.event_id
    cursor.attempts, cursor.retry_at = 0, None


def overdue_jobs(factory: sessionmaker[Session], *, grace_s: float = 60.0, box: Outbox = JOBS) -> list[str]:
    """Jobs (sweeps, with ``box=SWEEPS``) with undelivered events that no task is on: their wake-up or retry
    message was lost."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    cursor, event = box.cursor, box.event
    with transaction(factory) as session:
        return list(session.scalars(
            select(box.of(cursor)).where(
                or_(cursor.lease_until.is_(None), cursor.lease_until < utcnow()),
                or_(cursor.retry_at.is_(None), cursor.retry_at < cutoff),
                exists().where(box.of(event) == box.of(cursor), event.id > cursor.last_event_id,
                               event.created_at < cutoff),
            ).limit(1000)
        ))
