"""A sweep's own events POSTed to its webhook by the jobs' delivery code (``worker/webhooks.py``, ``SWEEPS``):
in order, signed, retried, given up, found again when a wake-up is lost; woken after the commit."""

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models.db import utcnow
from models.enums import DeliveryOutcome, SweepEventType
from models.ids import new_id
from models.outbox import notify_after_commit
from models.settings import Settings
from models.sweep_spec import SweepRequest
from models.tables import Sweep, SweepEvent, SweepWebhookCursor, SweepWebhookDelivery
from tests.receiver import Receiver, verify
from tests.specs import IRIS_MLP
from tests.worker.test_webhooks import FakeReceiver
from worker.webhook_http import SIGNATURE_HEADER
from worker.webhooks import SWEEPS, deliver_pending, overdue_jobs

SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_retry_base_s": 5.0, "webhook_max_attempts": 2})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def make_sweep(session_factory, url: str, **hook) -> str:
    request = SweepRequest.model_validate({
        "spec": IRIS_MLP, "space": {"fit.batch_size": {"choice": [8, 16]}}, "sampler": "grid",
        "webhook": {"url": url, "secret": SECRET, **hook}})
    with session_factory() as session, session.begin():
        sweep = Sweep(id=new_id("swp"), tenant="t", name="hooked", request=request.model_dump(mode="json"),
                      trials_planned=2, summary={})
        session.add(sweep)
    return sweep.id


def add(session_factory, sweep_id: str, kind: SweepEventType, **data) -> int:
    with session_factory() as session, session.begin():
        event = SweepEvent(sweep_id=sweep_id, type=kind, data=data)
        session.add(event)
        session.flush()
        return event.id


def records(db_session, sweep_id: str) -> list[SweepWebhookDelivery]:
    db_session.expire_all()
    return list(db_session.scalars(select(SweepWebhookDelivery).where(SweepWebhookDelivery.sweep_id == sweep_id)
                                   .order_by(SweepWebhookDelivery.id)))


def test_a_sweeps_events_are_posted_in_order_signed_as_a_jobs_are_and_recorded(
        session_factory, db_session, hook_settings, receiver):
    sweep_id = make_sweep(session_factory, receiver.url)
    add(session_factory, sweep_id, SweepEventType.trial_started, number=0)  # not in the default events
    ids = [add(session_factory, sweep_id, SweepEventType.trial_finished, number=0, objective=0.3),
           add(session_factory, sweep_id, SweepEventType.best, number=0, objective=0.3),
           add(session_factory, sweep_id, SweepEventType.trial_pruned, number=1, stopped_by="diverging"),
           add(session_factory, sweep_id, SweepEventType.succeeded, trials=2)]
    settings = hook_settings.model_copy(update={"webhook_allow_private": True})  # the receiver is on 127.0.0.1

    assert deliver_pending(session_factory, sweep_id, settings=settings, box=SWEEPS) is None

    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["id"] for b in bodies] == ids
    assert [b["type"] for b in bodies] == ["trial.finished", "sweep.best", "trial.pruned", "sweep.succeeded"]
    assert bodies[2] == {**bodies[2], "sweep_id": sweep_id, "data": {"number": 1, "stopped_by": "diverging"}}
    assert all(verify(SECRET, r.headers[SIGNATURE_HEADER], r.body) for r in receiver.requests)
    assert [(r.event_id, r.outcome) for r in records(db_session, sweep_id)] == [
        (i, DeliveryOutcome.delivered) for i in ids]
    assert db_session.get(SweepWebhookCursor, sweep_id).last_event_id == ids[-1]


def test_a_failing_receiver_is_retried_then_given_up_and_a_lost_wake_up_is_found(
        session_factory, db_session, hook_settings):
    sweep_id = make_sweep(session_factory, "https://hooks.example/in", events=["sweep.best", "sweep.succeeded"])
    first = add(session_factory, sweep_id, SweepEventType.best, number=0)
    second = add(session_factory, sweep_id, SweepEventType.succeeded)
    down = FakeReceiver(False, False)

    assert deliver_pending(session_factory, sweep_id, settings=hook_settings, post=down, box=SWEEPS) == 5.0
    with session_factory() as session, session.begin():  # the retry is due; its message was lost
        session.execute(update(SweepWebhookCursor).where(SweepWebhookCursor.sweep_id == sweep_id)
                        .values(retry_at=utcnow() - timedelta(minutes=5)))
        session.execute(update(SweepEvent).where(SweepEvent.sweep_id == sweep_id)
                        .values(created_at=utcnow() - timedelta(minutes=5)))
    assert sweep_id in overdue_jobs(session_factory, box=SWEEPS)
    assert deliver_pending(session_factory, sweep_id, settings=hook_settings, post=down, box=SWEEPS) is None

    assert [(r.event_id, r.attempt, r.outcome) for r in records(db_session, sweep_id)] == [
        (first, 1, DeliveryOutcome.failed), (first, 2, DeliveryOutcome.gave_up), (second, 0, DeliveryOutcome.skipped)]
    assert sweep_id not in overdue_jobs(session_factory, box=SWEEPS)


def test_a_committed_sweep_event_wakes_the_sweeps_delivery_only_when_its_webhook_wants_it(session_factory):
    hooked = make_sweep(session_factory, "https://hooks.example/in", events=["sweep.succeeded"])
    jobs, sweeps = [], []
    notify_after_commit(session_factory, jobs.append, sweeps.append)
    with session_factory() as session, session.begin():
        sweep = session.get_one(Sweep, hooked)  # held, so at hand: its webhook decides without a query
        session.add(SweepEvent(sweep_id=sweep.id, type=SweepEventType.trial_finished, data={}))
    assert sweeps == []  # not subscribed
    with session_factory() as session, session.begin():
        sweep = session.get_one(Sweep, hooked)
        session.add(SweepEvent(sweep_id=sweep.id, type=SweepEventType.succeeded, data={}))
    assert (jobs, sweeps) == ([], [hooked])

