"""Recovery in seconds: dead holders on this host, broker resets, submission order, hand-back."""

import subprocess
import sys
from datetime import timedelta

from models.db import utcnow
from models.enums import EventType, JobStatus, StopReason
from models.tables import Job, JobEvent
from tests.specs import IRIS_MLP
from worker import holders, job_store
from worker.reconciler import reconcile


def dead_process_here() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return holders.this_process().rpartition(":")[0] + f":{child.pid}"


def test_a_holder_is_dead_only_when_its_process_on_this_host_is_gone():
    assert not holders.is_dead_here(holders.this_process())
    assert holders.is_dead_here(dead_process_here())
    assert not holders.is_dead_here("some-other-host:1")  # judged by its heartbeat only
    assert not holders.is_dead_here(None)


def test_a_job_whose_holder_died_on_this_host_is_requeued_before_its_heartbeat_is_stale(
        make_job, session_factory, db_session, settings):
    fresh = utcnow()
    dead = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=fresh, attempts=1, worker=dead_process_here())
    alive = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=fresh, attempts=1,
                     worker=holders.this_process())
    elsewhere = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=fresh, attempts=1, worker="other-host:1")
    sent: list[str] = []

    assert reconcile(session_factory, settings, sent.append) == sent == [dead]
    db_session.expire_all()
    assert db_session.get(Job, dead).status is JobStatus.queued
    assert {db_session.get(Job, j).status for j in (alive, elsewhere)} == {JobStatus.running}


def test_lost_jobs_are_sent_again_in_submission_order(make_job, session_factory, settings):
    old = utcnow() - timedelta(hours=1)
    ids = [make_job(IRIS_MLP, enqueued_at=old, created_at=old + timedelta(seconds=s)) for s in (30, 10, 20)]
    sent: list[str] = []

    reconcile(session_factory, settings, sent.append)

    assert sent == [ids[1], ids[2], ids[0]]


def test_after_a_broker_reset_every_queued_job_is_sent_again_at_once(make_job, session_factory, settings):
    recent = make_job(IRIS_MLP)  # its message would only count as lost after queued_stale_after_s
    running = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1, worker="other:1")
    sent: list[str] = []

    assert reconcile(session_factory, settings, sent.append) == []
    assert reconcile(session_factory, settings, sent.append, broker_was_reset=True) == [recent]
    assert running not in sent


def test_release_hands_a_job_back_only_from_the_named_holder(make_job, session_factory, db_session):
    me = holders.this_process()
    job_id = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1, worker=me)

    assert not job_store.release(session_factory, job_id, holder_is=lambda h: h == "someone-else", reason="x")
    assert job_store.release(session_factory, job_id, holder_is=lambda h: h == me, reason="worker_stopping")
    assert not job_store.release(session_factory, job_id, holder_is=lambda h: True, reason="again")  # not running

    db_session.expire_all()
    assert db_session.get(Job, job_id).status is JobStatus.queued
    events = db_session.query(JobEvent).filter(JobEvent.job_id == job_id).all()
    assert [e.data.get("reason") for e in events if e.type is EventType.queued] == ["worker_stopping"]


def test_release_of_a_job_whose_cancel_was_asked_cancels_it(make_job, session_factory, db_session):
    job_id = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1, worker="w:1",
                      cancel_requested=True)

    assert not job_store.release(session_factory, job_id, holder_is=lambda h: True, reason="worker_stopping")

    db_session.expire_all()
    assert db_session.get(Job, job_id).stop_reason is StopReason.cancelled
