"""models/lifecycle.py: each transition leaves only the states it names, writes its event
with it, and is the only code that changes a job's status."""

import ast
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from models import lifecycle
from models.db import make_session_factory, transaction, utcnow
from models.enums import EventType, JobStatus, StopReason
from models.holder import Holder
from models.ids import new_id
from models.lifecycle import Claim
from models.tables import Job, JobEvent
from tests.specs import IRIS_MLP
from tests.worker.conftest import insert_job

ROOT = Path(__file__).resolve().parents[2]
HOLDER = Holder(host="host-a", pid=1, started=100, boot=None, namespace=None)
ALL = list(JobStatus)
TOKEN = 5


def events(session, job_id: str) -> list[str]:
    query = select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    return [e.value for e in session.scalars(query)]


def _claim(session, job):
    return lifecycle.claim(session, job.id, holder=HOLDER, stale_before=utcnow() + timedelta(seconds=1)) is not None


# transition -> (apply it to a job, the states it may leave)
TRANSITIONS = {
    "claim": (_claim, {JobStatus.queued, JobStatus.running}),
    "cancel": (lambda s, job: lifecycle.cancel(s, job), {JobStatus.queued, JobStatus.running}),
    "requeue": (lambda s, job: lifecycle.requeue(s, job), {JobStatus.queued, JobStatus.running}),
    "fail": (lambda s, job: lifecycle.fail(s, job, error={"type": "WorkerLost", "message": "m"}),
             {JobStatus.queued, JobStatus.running}),
    "cancel_lost": (lambda s, job: lifecycle.cancel_lost(s, job), {JobStatus.queued, JobStatus.running}),
    "finish": (lambda s, job: lifecycle.finish(s, Claim(job.id, TOKEN), status=JobStatus.succeeded,
                                               stop_reason=StopReason.completed), {JobStatus.running}),
    "release": (lambda s, job: lifecycle.release(s, Claim(job.id, TOKEN)), {JobStatus.running}),
}


@pytest.mark.parametrize("name", TRANSITIONS)
@pytest.mark.parametrize("status", ALL)
def test_each_transition_leaves_only_the_states_it_names(session_factory, name, status):
    apply, leaves = TRANSITIONS[name]
    job_id = insert_job(session_factory, IRIS_MLP, status=status, claim=TOKEN, attempts=1,
                        heartbeat_at=utcnow() - timedelta(hours=1))
    with transaction(session_factory) as session:
        before = session.get_one(Job, job_id)
        happened = apply(session, before)
    with transaction(session_factory) as session:
        after = session.get_one(Job, job_id, populate_existing=True)
        assert happened == (status in leaves)
        if not happened:
            assert after.status is status and events(session, job_id) == []  # nothing written, no event
        elif name != "cancel" or status is JobStatus.queued:
            assert len(events(session, job_id)) == 1  # its event, in the same transaction


@pytest.mark.parametrize("name", ["finish", "release"])
def test_a_worker_write_needs_its_own_token(session_factory, name):
    apply, _ = TRANSITIONS[name]
    job_id = insert_job(session_factory, IRIS_MLP, status=JobStatus.running, claim=TOKEN + 1)  # claimed again since
    with transaction(session_factory) as session:
        assert not apply(session, session.get_one(Job, job_id))
        assert session.get_one(Job, job_id).status is JobStatus.running and events(session, job_id) == []


@pytest.mark.parametrize("name", ["requeue", "fail", "cancel_lost"])
def test_the_reconciler_leaves_a_job_claimed_again_since_it_looked(session_factory, name):
    apply, _ = TRANSITIONS[name]
    job_id = insert_job(session_factory, IRIS_MLP, status=JobStatus.running, claim=TOKEN,
                        heartbeat_at=utcnow() - timedelta(hours=1))
    with transaction(session_factory) as session:
        seen = session.get_one(Job, job_id)
        session.expunge(seen)
    with transaction(session_factory) as session:  # a worker claims it meanwhile
        assert lifecycle.claim(session, job_id, holder=HOLDER, stale_before=utcnow() + timedelta(seconds=1))
    with transaction(session_factory) as session:
        assert not apply(session, seen)
        assert session.get_one(Job, job_id).claim == TOKEN + 1


def test_cancel_of_a_running_job_only_flags_it(session_factory):
    job_id = insert_job(session_factory, IRIS_MLP, status=JobStatus.running)
    with transaction(session_factory) as session:
        job = session.get_one(Job, job_id)
        assert lifecycle.cancel(session, job)
        assert job.status is JobStatus.running and job.cancel_requested and events(session, job_id) == []


def test_a_released_job_does_not_count_as_a_lost_worker(session_factory):
    job_id = insert_job(session_factory, IRIS_MLP)
    with transaction(session_factory) as session:
        job = lifecycle.claim(session, job_id, holder=HOLDER, stale_before=utcnow())
        assert lifecycle.release(session, Claim.of(job))
        job = session.get_one(Job, job_id, populate_existing=True)
        assert job.status is JobStatus.queued and job.attempts == 0 and job.claim == 1
        assert events(session, job_id) == ["job.started", "job.queued"]


def new_job(tenant: str) -> Job:
    return Job(id=new_id("job"), tenant=tenant, name="n", spec=IRIS_MLP, dataset_ref="builtin:iris", epochs=3,
               findings=[])


def test_create_caps_the_queued_jobs_of_each_tenant(session_factory):
    with transaction(session_factory) as session:
        for _ in range(2):
            lifecycle.create(session, new_job("capped"), max_queued=2)
        with pytest.raises(lifecycle.QueueFull, match="already has 2 queued jobs"):
            lifecycle.create(session, new_job("capped"), max_queued=2)
        lifecycle.create(session, new_job("other"), max_queued=2)  # another tenant's queue


def test_the_cap_is_exact_under_concurrent_creates(engine):
    """20 threads, each its own connection and transaction, against a cap of 5."""
    factory = make_session_factory(engine)
    tenant = f"burst-{new_id('t')}"
    created, refused, start = [], [], threading.Barrier(20)

    def submit() -> None:
        start.wait()
        try:
            with transaction(factory) as session:
                created.append(lifecycle.create(session, new_job(tenant), max_queued=5).id)
        except lifecycle.QueueFull:
            refused.append(1)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        with transaction(factory) as session:
            stored = session.scalars(select(Job.id).where(Job.tenant == tenant)).all()
        assert len(created) == len(stored) == 5 and len(refused) == 15
    finally:
        with transaction(factory) as session:
            session.execute(delete(Job).where(Job.tenant == tenant))


def test_create_writes_the_queued_event_and_one_per_preflight_finding(session_factory):
    finding = {"code": "tiny_batch", "phase": "preflight", "severity": "warning"}
    with transaction(session_factory) as session:
        job = new_job("t")
        job.findings = [finding]
        lifecycle.create(session, job, max_queued=10, parent_id="job_x")
        rows = session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)).all()
        assert [(e.type, e.data.get("parent_id")) for e in rows] == [(EventType.queued, "job_x"),
                                                                     (EventType.finding, None)]


def _status_writes(source: str) -> list[int]:
    """Lines of ``source`` that set a job's status: ``x.status = ...`` (plain or in a tuple),
    or ``status`` given to ``Job(...)`` or to an UPDATE's ``.values(...)`` (keyword or dict)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(t, ast.Attribute) and t.attr == "status":
                        lines.append(node.lineno)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            keys = [k.arg for k in node.keywords] + [getattr(k, "value", None) for a in node.args
                                                     if isinstance(a, ast.Dict) for k in a.keys]
            if name in ("Job", "values") and "status" in keys:
                lines.append(node.lineno)
    return lines


def test_the_status_guard_sees_each_way_of_writing_a_status():
    source = """
job.status = JobStatus.failed
job.status, job.stop_reason = JobStatus.failed, None
session.add(Job(id="j", status=JobStatus.queued))
session.execute(update(Job).values(status=JobStatus.running))
session.execute(update(Job).values({"status": JobStatus.running}))
ok = job.status == JobStatus.failed or JobOut(status=job.status)
"""
    assert _status_writes(source) == [2, 3, 4, 5, 6]


def test_only_the_lifecycle_module_changes_a_job_status():
    home = ROOT / "models" / "lifecycle.py"
    tops = ("api", "worker", "models", "cli", "broker", "datastore", "diagnosis", "keras_bridge", "bench")
    sources = [p for top in tops for p in (ROOT / top).rglob("*.py") if p != home]
    writers = {str(p.relative_to(ROOT)): lines for p in sources if (lines := _status_writes(p.read_text()))}
    assert writers == {}, "a job's status changes only in models/lifecycle.py"
