"""A worker's writes are fenced by its claim: once the job was failed, requeued or taken
over, the worker that lost it writes nothing more, and stops."""

import subprocess
from datetime import timedelta

from sqlalchemy import select, update

from models.db import transaction, utcnow
from models.enums import JobStatus
from models.holder import Holder, process_start, this_process
from models.lifecycle import Claim
from models.tables import EpochMetric, Job, JobEvent
from tests.specs import IRIS_MLP, spec
from worker import job_store
from worker.reconciler import reconcile
from worker.training import run_training

OTHER = Holder(host="host-b", pid=2, started=200, boot=None, namespace=None)
LONG_AGO = timedelta(hours=1)


def event_types(session, job_id: str) -> list[str]:
    session.expire_all()
    query = select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    return [t.value for t in session.scalars(query)]


def epochs(session, job_id: str) -> list[int]:
    return list(session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job_id)
                                .order_by(EpochMetric.epoch)))


def lose_the_worker(factory, job_id: str) -> None:
    """What the reconciler sees of a worker that stopped beating."""
    with transaction(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - LONG_AGO))


def test_a_job_failed_by_the_reconciler_is_not_succeeded_by_its_slow_worker(
    make_job, session_factory, db_session, settings
):
    job_id = make_job(IRIS_MLP, attempts=settings.max_attempts - 1)
    claim = Claim.of(job_store.claim(session_factory, job_id, stale_before=utcnow()))
    lose_the_worker(session_factory, job_id)
    reconcile(session_factory, settings, lambda *_: None)  # WorkerLost: the last attempt

    assert not job_store.beat(session_factory, claim)
    assert not job_store.finish(session_factory, claim, status=JobStatus.succeeded, stop_reason="completed")

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.failed and job.error["type"] == "WorkerLost"
    assert event_types(db_session, job_id) == ["job.started", "job.failed"]  # one terminal event


def test_a_worker_whose_job_the_reconciler_failed_stops_and_writes_nothing_more(
    make_job, session_factory, db_session, settings, monkeypatch
):
    job_id = make_job(spec(IRIS_MLP, fit={"epochs": 20}), attempts=settings.max_attempts - 1)
    record = job_store.record_epoch

    def slow_worker(factory, claim, *, epoch, **kwargs):  # after epoch 2 the reconciler gives up on it
        done = record(factory, claim, epoch=epoch, **kwargs)
        if epoch == 2:
            lose_the_worker(factory, claim.job_id)
            reconcile(factory, settings, lambda *_: None)
        return done

    monkeypatch.setattr(job_store, "record_epoch", slow_worker)
    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.failed and job.model_path is None
    assert epochs(db_session, job_id) == [1, 2]
    assert event_types(db_session, job_id) == ["job.started", "job.epoch", "job.epoch", "job.failed"]
    assert not any(f["code"] == "verdict" for f in job.findings)


def test_a_worker_whose_job_was_taken_over_writes_no_further_epoch(
    make_job, session_factory, db_session, settings, monkeypatch
):
    job_id = make_job(spec(IRIS_MLP, fit={"epochs": 20}))
    record = job_store.record_epoch
    taken: list[Job] = []

    def taken_over(factory, claim, *, epoch, **kwargs):  # another worker takes it after epoch 2
        done = record(factory, claim, epoch=epoch, **kwargs)
        if epoch == 2:
            lose_the_worker(factory, claim.job_id)
            taken.append(job_store.claim(factory, claim.job_id, holder=OTHER, stale_before=utcnow()))
        return done

    monkeypatch.setattr(job_store, "record_epoch", taken_over)
    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert taken[0] is not None and job.status is JobStatus.running and job.holder == OTHER.as_json()
    assert job.claim == taken[0].claim == 2 and job.epoch == 2 and job.data_summary is not None
    assert epochs(db_session, job_id) == [1, 2]
    assert event_types(db_session, job_id) == ["job.started", "job.epoch", "job.epoch", "job.started"]


def test_a_job_whose_holder_is_known_dead_is_claimed_at_once(make_job, session_factory):
    child = subprocess.Popen(["sleep", "60"])
    started = process_start(child.pid)
    child.kill()
    child.wait()
    here = this_process()
    dead = Holder(host=here.host, pid=child.pid, started=started, boot=here.boot, namespace=here.namespace)
    reused = Holder(host=here.host, pid=here.pid, started=here.started - 1, boot=here.boot, namespace=here.namespace)
    alive = Holder(host=here.host, pid=1, started=process_start(1), boot=here.boot, namespace=here.namespace)
    elsewhere = Holder(host="elsewhere", pid=child.pid, started=started, boot=None, namespace=here.namespace)
    fresh = utcnow() - LONG_AGO  # the heartbeats below are fresh: only the holder's death frees a job
    for holder, claimable in ((dead, True), (reused, True), (alive, False), (elsewhere, False)):
        job_id = make_job(IRIS_MLP, status=JobStatus.running, heartbeat_at=utcnow(), claim=3,
                          worker=f"{holder.host}:{holder.pid}x", holder=holder.as_json())
        claimed = job_store.claim(session_factory, job_id, stale_before=fresh)
        assert (claimed is not None) == claimable, holder
        if claimable:
            assert claimed.claim == 4 and claimed.holder == here.as_json()
