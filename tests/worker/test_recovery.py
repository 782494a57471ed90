"""Recovery in seconds: dead holders on this host, broker resets, submission order."""

import subprocess
import sys
from datetime import timedelta

from models.db import utcnow
from models.enums import JobStatus
from models.holder import Holder, this_process
from models.tables import Job
from tests.specs import IRIS_MLP
from tests.worker.conftest import Sent
from worker.reconciler import reconcile


def dead_process_here() -> Holder:
    """A holder of this host whose process has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return Holder(**{**this_process().as_json(), "pid": child.pid})


def test_a_job_whose_holder_died_on_this_host_is_requeued_before_its_heartbeat_is_stale(
        make_job, session_factory, db_session, settings):
    fresh = utcnow()
    gone, me = dead_process_here(), this_process()
    elsewhere_holder = Holder(**{**me.as_json(), "host": "other-host"})
    dead = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=fresh, attempts=1, worker=gone.name,
                    holder=gone.as_json())
    alive = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=fresh, attempts=1, worker=me.name,
                     holder=me.as_json())
    elsewhere = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=fresh, attempts=1,
                         worker=elsewhere_holder.name, holder=elsewhere_holder.as_json())
    sent = Sent()

    assert reconcile(session_factory, settings, sent) == sent == [dead]
    db_session.expire_all()
    assert db_session.get(Job, dead).status is JobStatus.queued
    assert {db_session.get(Job, j).status for j in (alive, elsewhere)} == {JobStatus.running}


def test_lost_jobs_are_sent_again_in_submission_order(make_job, session_factory, settings):
    old = utcnow() - timedelta(hours=1)
    ids = [make_job(IRIS_MLP, enqueued_at=old, created_at=old + timedelta(seconds=s)) for s in (30, 10, 20)]
    sent = Sent()

    reconcile(session_factory, settings, sent)

    assert sent == [ids[1], ids[2], ids[0]]


def test_after_a_broker_reset_every_queued_job_is_sent_again_at_once(make_job, session_factory, settings):
    recent = make_job(IRIS_MLP)  # its message would only count as lost after queued_stale_after_s
    running = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), attempts=1, worker="other:1")
    sent = Sent()

    assert reconcile(session_factory, settings, sent) == []
    assert reconcile(session_factory, settings, sent, broker_was_reset=True) == [recent]
    assert running not in sent
