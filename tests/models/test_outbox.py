"""Committed job events wake the webhook delivery of jobs that want them, and only those."""

from datetime import timedelta

import pytest

from models.db import utcnow
from models.enums import EventType
from models.events import job_event
from models.lifecycle import Claim
from models.outbox import notify_after_commit
from models.tables import Job
from tests.specs import IRIS_MLP, spec
from tests.worker.conftest import insert_job
from worker import job_store

HOOK = {"url": "https://hooks.example/in", "secret": "whsec-0123456789abcdef"}


@pytest.fixture
def woken(session_factory) -> list[str]:
    calls: list[str] = []
    notify_after_commit(session_factory, calls.append)
    return calls


def test_a_committed_event_the_webhook_wants_wakes_its_delivery_once(session_factory, woken):
    hooked = insert_job(session_factory, spec(IRIS_MLP, webhook=HOOK))
    plain = insert_job(session_factory, IRIS_MLP)
    woken.clear()

    claims = [Claim.of(job_store.claim(session_factory, job_id, stale_before=utcnow() - timedelta(hours=1)))
              for job_id in (hooked, plain)]
    assert woken == [hooked]

    job_store.record_epoch(session_factory, claims[0], epoch=1, logs={"loss": 1.0}, duration_s=0.1, monitor="loss")
    assert woken == [hooked]  # job.epoch is opt-in


def test_nothing_is_sent_for_a_rolled_back_transaction(session_factory, woken):
    job_id = insert_job(session_factory, spec(IRIS_MLP, webhook=HOOK))
    woken.clear()
    with pytest.raises(RuntimeError), session_factory() as session, session.begin():
        session.add(job_event(session.get_one(Job, job_id), EventType.started))
        session.flush()
        raise RuntimeError("the step failed")
    with session_factory() as session, session.begin():
        session.get_one(Job, job_id)
    assert woken == []


def test_a_failing_wake_up_never_fails_the_commit(session_factory, db_session):
    def broker_down(job_id: str) -> None:
        raise ConnectionError("broker unreachable")

    notify_after_commit(session_factory, broker_down)
    job_id = insert_job(session_factory, spec(IRIS_MLP, webhook=HOOK))
    job_store.claim(session_factory, job_id, stale_before=utcnow())
    db_session.expire_all()
    assert db_session.get(Job, job_id).attempts == 1
