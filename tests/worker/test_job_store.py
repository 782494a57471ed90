from datetime import timedelta

from sqlalchemy import func, select

from models.db import utcnow
from models.enums import JobStatus
from models.holder import Holder
from models.lifecycle import Claim
from models.tables import EpochMetric, Job, JobEvent
from tests.specs import IRIS_MLP
from worker import job_store

A = Holder(host="host-a", pid=1, started=100, boot=None, namespace=None)
B = Holder(host="host-b", pid=2, started=200, boot=None, namespace=None)


def test_only_one_delivery_claims_a_job(make_job, session_factory):
    job_id = make_job(IRIS_MLP)
    stale = utcnow() - timedelta(minutes=5)
    assert job_store.claim(session_factory, job_id, holder=A, stale_before=stale) is not None
    assert job_store.claim(session_factory, job_id, holder=B, stale_before=stale) is None


def test_a_running_job_with_a_stale_heartbeat_or_held_by_this_process_is_claimed_again(
    make_job, session_factory, db_session
):
    job_id = make_job(IRIS_MLP)
    first = job_store.claim(session_factory, job_id, holder=A, stale_before=utcnow())
    # Same process (a retry after a database outage) takes it back at once.
    again = job_store.claim(session_factory, job_id, holder=A, stale_before=utcnow() - timedelta(hours=1))
    # Another process only once the heartbeat is older than the cutoff.
    assert job_store.claim(session_factory, job_id, holder=B, stale_before=utcnow() - timedelta(hours=1)) is None
    last = job_store.claim(session_factory, job_id, holder=B, stale_before=utcnow() + timedelta(seconds=1))
    job = db_session.get(Job, job_id)
    assert job.attempts == 3 and job.worker == "host-b:2" and job.holder == B.as_json()
    assert [first.claim, again.claim, last.claim] == [1, 2, 3]  # each claim is a new token


def test_a_cancelled_job_is_never_claimed(make_job, session_factory):
    # The status guard alone: no cancel flag, which is the other guard.
    job_id = make_job(IRIS_MLP, status=JobStatus.cancelled, cancel_requested=False)
    assert job_store.claim(session_factory, job_id, holder=A, stale_before=utcnow()) is None


def test_an_abandoned_running_job_whose_cancel_was_requested_is_not_claimed_again(make_job, session_factory):
    # The cancel flag alone: without it this job is claimable (its twin shows it), its heartbeat being stale.
    abandoned = {"status": JobStatus.running, "claim": 1, "worker": B.name, "holder": B.as_json(),
                 "heartbeat_at": utcnow() - timedelta(hours=1)}
    flagged, twin = make_job(IRIS_MLP, cancel_requested=True, **abandoned), make_job(IRIS_MLP, **abandoned)
    assert job_store.claim(session_factory, flagged, holder=A, stale_before=utcnow()) is None
    assert job_store.claim(session_factory, twin, holder=A, stale_before=utcnow()) is not None


def test_recording_an_epoch_twice_keeps_the_first_record_and_one_event(make_job, session_factory, db_session):
    job_id = make_job(IRIS_MLP)
    claim = Claim.of(job_store.claim(session_factory, job_id, holder=A, stale_before=utcnow()))
    # A run resumed from the checkpoint before epoch 1 trains epoch 1 again.
    recorded = [job_store.record_epoch(session_factory, claim, epoch=1, logs={"loss": loss, "val_loss": float("nan")},
                                       duration_s=0.1, monitor="val_loss") for loss in (1.0, 0.9)]
    assert recorded == [True, False]
    rows = db_session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)).all()
    assert len(rows) == 1 and rows[0].metrics == {"loss": 1.0, "val_loss": None}
    assert db_session.get(Job, job_id).last_metrics == {"epoch": 1, "loss": 1.0, "val_loss": None}
    epochs = db_session.scalar(select(func.count()).select_from(JobEvent).where(
        JobEvent.job_id == job_id, JobEvent.type == "job.epoch"))
    assert epochs == 1


def test_a_finding_is_added_once_per_code_and_phase(make_job, session_factory, db_session):
    job_id = make_job(IRIS_MLP)
    claim = Claim.of(job_store.claim(session_factory, job_id, holder=A, stale_before=utcnow()))
    finding = {"code": "unstable", "phase": "training", "severity": "warning", "epoch": 3, "message": "m",
               "evidence": {}, "suggestions": []}
    assert job_store.add_finding(session_factory, claim, finding)
    assert not job_store.add_finding(session_factory, claim, {**finding, "epoch": 5})
    assert [f["epoch"] for f in db_session.get(Job, job_id).findings] == [3]
