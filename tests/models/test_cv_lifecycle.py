"""models/lifecycle.py for cross-validation runs: the parent is never claimed, its folds count against
the queued-job cap, and every fold transition moves the parent to the status its folds give it, once."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import lifecycle
from models.db import transaction, utcnow
from models.enums import EventType, JobStatus, StopReason
from models.holder import Holder
from models.ids import new_id
from models.lifecycle import Claim
from models.spec import JobSpec
from models.tables import Job, JobEvent
from tests.specs import IRIS_MLP, spec

HOLDER = Holder(host="host-a", pid=1, started=100, boot=None, namespace=None)
TENANT = "cv-tenant"


def new_run(factory: sessionmaker[Session], k: int = 3, max_queued: int = 100) -> tuple[str, list[str]]:
    body = JobSpec.model_validate(spec(IRIS_MLP, data={"folds": k, "validation_split": 0.0})).model_dump(mode="json")
    parent = Job(id=new_id("job"), tenant=TENANT, name="cv", spec=body, dataset_ref="builtin:iris", epochs=3,
                 findings=[], cv_folds=k)
    folds = [Job(id=new_id("job"), tenant=TENANT, name="cv", spec=body, dataset_ref="builtin:iris", epochs=3,
                 findings=[], cv_parent_id=parent.id, fold=i) for i in range(k)]
    with transaction(factory) as session:
        lifecycle.create_cv_run(session, parent, folds, max_queued=max_queued)
    return parent.id, [f.id for f in folds]


def claim(factory, job_id: str) -> Claim | None:
    with transaction(factory) as session:
        job = lifecycle.claim(session, job_id, holder=HOLDER, stale_before=utcnow() - timedelta(hours=1))
        return None if job is None else Claim.of(job)


def finish(factory, held: Claim, status=JobStatus.succeeded) -> bool:
    with transaction(factory) as session:
        return lifecycle.finish(session, held, status=status, stop_reason=StopReason.completed)


def parent_of(factory, parent_id: str) -> Job:
    with transaction(factory) as session:
        return session.get_one(Job, parent_id)


def parent_events(factory, parent_id: str) -> list[str]:
    with transaction(factory) as session:
        return [e.value for e in session.scalars(
            select(JobEvent.type).where(JobEvent.job_id == parent_id).order_by(JobEvent.id))]


def test_the_parent_follows_its_folds_and_ends_with_the_last_one(session_factory):
    parent_id, folds = new_run(session_factory)
    assert parent_of(session_factory, parent_id).status is JobStatus.queued
    assert claim(session_factory, parent_id) is None  # never trained itself

    claims = [claim(session_factory, fold) for fold in folds]
    assert parent_of(session_factory, parent_id).status is JobStatus.running
    assert finish(session_factory, claims[0]) and finish(session_factory, claims[1])
    assert parent_of(session_factory, parent_id).status is JobStatus.running
    assert finish(session_factory, claims[2])

    parent = parent_of(session_factory, parent_id)
    assert parent.status is JobStatus.succeeded and parent.stop_reason is StopReason.completed
    assert parent.finished_at is not None and parent.started_at is not None
    assert parent_events(session_factory, parent_id) == ["job.queued", "job.started", "job.succeeded"]


def test_a_fold_trained_again_after_its_worker_died_does_not_end_the_run_twice(session_factory):
    parent_id, folds = new_run(session_factory, k=2)
    first = claim(session_factory, folds[0])
    finish(session_factory, claim(session_factory, folds[1]))
    with transaction(session_factory) as session:  # the reconciler: fold 0's worker is lost
        assert lifecycle.requeue(session, session.get_one(Job, folds[0]))
    assert parent_of(session_factory, parent_id).status is JobStatus.running  # one fold has ended
    assert not finish(session_factory, first)  # the dead worker's late write changes nothing
    again = claim(session_factory, folds[0])
    assert finish(session_factory, again)
    assert not finish(session_factory, again)  # a duplicate finish of the same claim

    assert parent_of(session_factory, parent_id).status is JobStatus.succeeded
    assert parent_events(session_factory, parent_id).count("job.succeeded") == 1


def test_a_failed_fold_fails_the_run_once_all_have_ended(session_factory):
    parent_id, folds = new_run(session_factory, k=2)
    finish(session_factory, claim(session_factory, folds[0]), JobStatus.failed)
    assert parent_of(session_factory, parent_id).status is JobStatus.running
    finish(session_factory, claim(session_factory, folds[1]))
    parent = parent_of(session_factory, parent_id)
    assert parent.status is JobStatus.failed and parent.stop_reason is StopReason.error


def test_cancelling_the_run_cancels_queued_folds_at_once_and_flags_running_ones(session_factory):
    parent_id, folds = new_run(session_factory)
    running = claim(session_factory, folds[0])
    with transaction(session_factory) as session:
        assert lifecycle.cancel_cv_run(session, session.get_one(Job, parent_id))
    with transaction(session_factory) as session:
        statuses = [session.get_one(Job, f).status for f in folds]
        assert statuses == [JobStatus.running, JobStatus.cancelled, JobStatus.cancelled]
        assert session.get_one(Job, folds[0]).cancel_requested
    assert parent_of(session_factory, parent_id).status is JobStatus.running
    finish(session_factory, running, JobStatus.cancelled)  # its worker stops at the next epoch
    assert parent_of(session_factory, parent_id).status is JobStatus.cancelled
    with transaction(session_factory) as session:  # nothing left to cancel
        assert not lifecycle.cancel_cv_run(session, session.get_one(Job, parent_id))


def test_the_k_folds_count_against_the_queued_job_cap_and_the_parent_does_not(session_factory):
    new_run(session_factory, k=3, max_queued=3)  # exactly fills the cap: 3 folds
    with pytest.raises(lifecycle.QueueFull, match="needs 2"):
        new_run(session_factory, k=2, max_queued=4)
    with transaction(session_factory) as session:
        assert session.scalar(select(Job).where(Job.tenant == TENANT, Job.cv_folds == 2)) is None  # nothing written
    new_run(session_factory, k=2, max_queued=5)  # 3 + 2 folds; the parents are not counted


def test_the_parent_events_carry_its_status(session_factory):
    parent_id, folds = new_run(session_factory, k=2)
    for fold in folds:
        with transaction(session_factory) as session:
            lifecycle.cancel(session, session.get_one(Job, fold))
    with transaction(session_factory) as session:
        query = select(JobEvent).where(JobEvent.job_id == parent_id).order_by(JobEvent.id.desc())
        last = session.scalars(query).first()
        assert last.type is EventType.cancelled and last.data["status"] == "cancelled" and last.data["cv_folds"] == 2
