"""Auto-retry creates its attempt through the same lifecycle.create as a submit: the
queued event, the preflight findings' events, and the tenant's cap on queued jobs."""

from sqlalchemy import select

from models.enums import JobStatus
from models.findings import Code, Finding, Suggestion
from models.tables import Job, JobEvent
from tests.specs import IRIS_MLP, spec
from tests.worker.conftest import Sent
from worker.auto_retry import spawn_retry

VERDICT = Finding(code=Code.verdict, severity="warning", phase="final", message="not learning",
                  evidence={"verdict": "not_learning", "from": "plateau"},
                  suggestions=[Suggestion(summary="a higher learning rate",
                                          patch={"compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01}}})])


def test_an_auto_retry_is_created_queued_with_its_events(make_job, session_factory, db_session):
    parent = make_job(spec(IRIS_MLP, diagnosis={"auto_retry": 1}), tenant="t-retry", status=JobStatus.succeeded)
    sent = Sent()

    child_id = spawn_retry(session_factory, parent, VERDICT, None, sent, max_queued=5)

    assert sent == [child_id]
    child = db_session.get(Job, child_id)
    assert child.status is JobStatus.queued and child.tenant == "t-retry" and child.parent_id == parent
    assert child.spec["compile"]["optimizer"]["learning_rate"] == 0.01 and child.spec["diagnosis"]["auto_retry"] == 0
    first = db_session.scalars(select(JobEvent).where(JobEvent.job_id == child_id).order_by(JobEvent.id)).first()
    assert first.type.value == "job.queued" and first.data["auto_retry"] and first.data["parent_id"] == parent


def test_an_auto_retry_obeys_the_tenants_cap_on_queued_jobs(make_job, session_factory, db_session):
    parent = make_job(spec(IRIS_MLP, diagnosis={"auto_retry": 1}), tenant="t-full", status=JobStatus.succeeded)
    for _ in range(2):
        make_job(IRIS_MLP, tenant="t-full")
    sent = Sent()

    assert spawn_retry(session_factory, parent, VERDICT, None, sent, max_queued=2) is None

    assert sent == []
    assert db_session.scalars(select(Job).where(Job.parent_id == parent)).all() == []
