"""Ordered webhook delivery: the cursor, the retries with backoff, the give-up, the lease."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models.db import utcnow
from models.enums import DeliveryOutcome, EventType
from models.events import job_event
from models.settings import Settings
from models.tables import Job, WebhookCursor, WebhookDelivery
from tests.specs import IRIS_MLP, spec
from worker.webhook_http import Attempt, Delivery
from worker.webhooks import backoff_s, deliver_pending, overdue_jobs

HOOK = {"url": "https://hooks.example/in", "secret": "whsec-0123456789abcdef"}
ALL = [e.value for e in EventType]


class FakeReceiver:
    """Answers each POST from a script: True is a 200, False a 503."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.seen: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> Attempt:
        self.seen.append(delivery)
        ok = self.answers.pop(0) if self.answers else True
        return Attempt(200 if ok else 503, None if ok else "the receiver answered HTTP 503", 1.0)

    @property
    def event_ids(self) -> list[int]:
        return [d.event_id for d in self.seen]


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_retry_base_s": 5.0, "webhook_retry_max_s": 600.0,
                                       "webhook_max_attempts": 3})


@pytest.fixture
def add_event(session_factory):
    def add(job_id: str, type: EventType, **data) -> int:
        with session_factory() as session, session.begin():
            event = job_event(session.get_one(Job, job_id), type, **data)
            session.add(event)
            session.flush()
            return event.id
    return add


def rows(db_session, job_id: str) -> list[WebhookDelivery]:
    db_session.expire_all()
    return list(db_session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)
                                   .order_by(WebhookDelivery.id)))


def make_retry_due(session_factory, job_id: str) -> None:
    with session_factory() as session, session.begin():
        session.execute(update(WebhookCursor).where(WebhookCursor.job_id == job_id)
                        .values(retry_at=utcnow() - timedelta(seconds=2)))


def test_events_are_delivered_in_order_once_each_and_every_attempt_is_recorded(
        make_job, add_event, session_factory, db_session, hook_settings):
    job_id = make_job(spec(IRIS_MLP, webhook={**HOOK, "events": ALL}))
    ids = [add_event(job_id, EventType.queued), add_event(job_id, EventType.started),
           add_event(job_id, EventType.epoch, metrics={"loss": 0.5}), add_event(job_id, EventType.succeeded)]
    receiver = FakeReceiver()

    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) is None
    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) is None  # nothing new

    assert receiver.event_ids == ids
    body = json.loads(receiver.seen[2].body)
    assert body["id"] == ids[2] and body["type"] == "job.epoch" and body["job_id"] == job_id
    assert body["data"]["metrics"] == {"loss": 0.5} and body["created_at"]
    assert receiver.seen[0].secret == HOOK["secret"] and receiver.seen[0].url == HOOK["url"]
    assert [(r.event_id, r.attempt, r.outcome) for r in rows(db_session, job_id)] == [
        (i, 1, DeliveryOutcome.delivered) for i in ids]


def test_events_the_webhook_does_not_subscribe_to_are_passed_over(make_job, add_event, session_factory, hook_settings):
    job_id = make_job(spec(IRIS_MLP, webhook=HOOK))  # default: no job.epoch
    started = add_event(job_id, EventType.started)
    for epoch in (1, 2):
        add_event(job_id, EventType.epoch, metrics={"loss": 1.0 / epoch})
    done = add_event(job_id, EventType.succeeded)
    receiver = FakeReceiver()

    deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver)

    assert receiver.event_ids == [started, done]


def test_a_failure_holds_back_the_later_events_and_retries_with_doubling_waits(
        make_job, add_event, session_factory, db_session, hook_settings):
    job_id = make_job(spec(IRIS_MLP, webhook=HOOK))
    first, second = add_event(job_id, EventType.queued), add_event(job_id, EventType.started)
    receiver = FakeReceiver(False, False, True)

    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) == 5.0
    # A task woken by a new event meanwhile sends nothing: the retry is scheduled.
    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) is None
    assert receiver.event_ids == [first]
    make_retry_due(session_factory, job_id)
    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) == 10.0
    make_retry_due(session_factory, job_id)
    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) is None

    assert receiver.event_ids == [first, first, first, second]
    assert [d.attempt for d in receiver.seen] == [1, 2, 3, 1]
    history = rows(db_session, job_id)
    assert [(r.event_id, r.attempt, r.outcome, r.status_code) for r in history] == [
        (first, 1, DeliveryOutcome.failed, 503), (first, 2, DeliveryOutcome.failed, 503),
        (first, 3, DeliveryOutcome.delivered, 200), (second, 1, DeliveryOutcome.delivered, 200)]
    assert all(r.next_attempt_at is not None for r in history[:2]) and history[2].next_attempt_at is None


def test_the_default_schedule_keeps_trying_for_more_than_an_hour():
    defaults = Settings()
    waits = [backoff_s(attempt, defaults) for attempt in range(1, defaults.webhook_max_attempts)]
    assert waits[:3] == [5.0, 10.0, 20.0] and max(waits) == defaults.webhook_retry_max_s
    assert sum(waits) > 3600


def test_after_the_last_attempt_the_event_and_its_backlog_are_given_up_and_later_events_flow(
        make_job, add_event, session_factory, db_session, hook_settings):
    job_id = make_job(spec(IRIS_MLP, webhook=HOOK))
    dead = add_event(job_id, EventType.queued)
    waiting = add_event(job_id, EventType.started)
    receiver = FakeReceiver(False, False, False)
    for _ in range(3):  # webhook_max_attempts
        deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver)
        make_retry_due(session_factory, job_id)
    later = add_event(job_id, EventType.succeeded)

    deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver)

    assert receiver.event_ids == [dead, dead, dead, later]
    assert [(r.event_id, r.outcome) for r in rows(db_session, job_id)] == [
        (dead, DeliveryOutcome.failed), (dead, DeliveryOutcome.failed), (dead, DeliveryOutcome.gave_up),
        (waiting, DeliveryOutcome.skipped), (later, DeliveryOutcome.delivered)]


def test_one_task_at_a_time_delivers_for_a_job(make_job, add_event, session_factory, hook_settings):
    job_id = make_job(spec(IRIS_MLP, webhook=HOOK))
    receiver = FakeReceiver()
    deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver)  # creates the cursor
    event = add_event(job_id, EventType.started)
    with session_factory() as session, session.begin():  # another worker holds the lease
        session.execute(update(WebhookCursor).where(WebhookCursor.job_id == job_id)
                        .values(lease_owner="other:1", lease_until=utcnow() + timedelta(minutes=1)))

    deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver)
    assert receiver.event_ids == []

    with session_factory() as session, session.begin():  # ... and died: its lease runs out
        session.execute(update(WebhookCursor).where(WebhookCursor.job_id == job_id)
                        .values(lease_until=utcnow() - timedelta(seconds=1)))
    deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver)
    assert receiver.event_ids == [event]


def test_a_job_without_a_webhook_sends_nothing(make_job, add_event, session_factory, hook_settings):
    job_id = make_job(IRIS_MLP)
    add_event(job_id, EventType.started)
    receiver = FakeReceiver()
    assert deliver_pending(session_factory, job_id, settings=hook_settings, post=receiver) is None
    assert receiver.seen == []


def test_the_sweep_finds_jobs_whose_wake_up_was_lost(make_job, add_event, session_factory, hook_settings):
    job_id = make_job(spec(IRIS_MLP, webhook=HOOK))
    deliver_pending(session_factory, job_id, settings=hook_settings, post=FakeReceiver())  # cursor, caught up
    add_event(job_id, EventType.started)  # ... and its message was lost

    assert job_id not in overdue_jobs(session_factory)  # too fresh: its message may still be on the way
    assert job_id in overdue_jobs(session_factory, grace_s=0)
    with session_factory() as session, session.begin():  # waiting for a scheduled retry: not overdue
        session.execute(update(WebhookCursor).where(WebhookCursor.job_id == job_id)
                        .values(retry_at=utcnow() + timedelta(minutes=5)))
    assert job_id not in overdue_jobs(session_factory, grace_s=0)
