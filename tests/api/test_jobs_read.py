"""Reading jobs back: one, lists with cursor pagination, curves, cancel, model."""

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db import utcnow
from models.enums import JobStatus, StopReason
from models.tables import EpochMetric, Job, JobEvent
from tests.specs import DIGITS_CNN, spec


def submit(client: TestClient, **changes) -> dict:
    response = client.post("/v1/jobs", json=spec(DIGITS_CNN, **changes))
    assert response.status_code == 202, response.text
    return response.json()


def test_unknown_job_is_a_json_404(client: TestClient):
    for path in ("/v1/jobs/job_nope", "/v1/jobs/job_nope/curves", "/v1/jobs/job_nope/model"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_list_paginates_newest_first_and_filters(client: TestClient):
    ids = [submit(client, name=f"page-test-{i}")["id"] for i in range(5)]
    submit(client, name="other")

    seen, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [job["id"] for job in page["items"] if job["name"].startswith("page-test-")]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))

    named = client.get("/v1/jobs", params={"name": "other"}).json()["items"]
    assert [job["name"] for job in named] == ["other"]
    queued = client.get("/v1/jobs", params={"status": "queued", "limit": 200}).json()["items"]
    assert {job["id"] for job in queued} >= set(ids)
    bad = client.get("/v1/jobs", params={"status": "sleeping"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "query.status"


def test_curves_are_columnar_json_and_csv(client: TestClient, db_session: Session):
    job_id = submit(client)["id"]
    for epoch, (loss, val) in enumerate([(2.0, 2.1), (1.0, 1.2)], start=1):
        db_session.add(EpochMetric(job_id=job_id, epoch=epoch, metrics={"loss": loss, "val_loss": val}, duration_s=0.5))
    db_session.commit()

    curves = client.get(f"/v1/jobs/{job_id}/curves").json()
    assert curves == {"epoch": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.1, 1.2], "duration_s": [0.5, 0.5]}

    csv = client.get(f"/v1/jobs/{job_id}/curves.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines() == ["epoch,loss,val_loss,duration_s", "1,2.0,2.1,0.5", "2,1.0,1.2,0.5"]
    # ?format=csv, its first address, still answers it (out of the OpenAPI document).
    assert client.get(f"/v1/jobs/{job_id}/curves", params={"format": "csv"}).text == csv.text
    assert client.get(f"/v1/jobs/{job_id}/curves.csv".replace(job_id, "job_nope")).status_code == 404


def test_cancel_a_queued_job_is_immediate(client: TestClient, db_session: Session):
    job_id = submit(client)["id"]

    response = client.post(f"/v1/jobs/{job_id}/cancel")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["stop_reason"] == "cancelled"
    job = db_session.get(Job, job_id)
    assert job is not None and job.cancel_requested and job.finished_at is not None
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    events = db_session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()
    assert [e.type.value for e in events] == ["job.queued", "job.cancelled"]


def test_cancel_a_running_job_only_flags_it_for_the_worker(client: TestClient, db_session: Session):
    job_id = submit(client)["id"]
    job = db_session.get(Job, job_id)
    job.status, job.started_at = JobStatus.running, utcnow()
    db_session.commit()

    body = client.post(f"/v1/jobs/{job_id}/cancel").json()

    assert body["status"] == "running"
    db_session.refresh(job)
    assert job.cancel_requested


def test_model_of_an_unfinished_job_is_409_and_of_a_failed_one_404(client: TestClient, db_session: Session):
    job_id = submit(client)["id"]
    assert client.get(f"/v1/jobs/{job_id}/model").status_code == 409
    job = db_session.get(Job, job_id)
    job.status, job.stop_reason, job.error = JobStatus.failed, StopReason.error, {"type": "X", "message": "boom"}
    db_session.commit()
    response = client.get(f"/v1/jobs/{job_id}/model")
    assert response.status_code == 404
    assert client.get(f"/v1/jobs/{job_id}").json()["error"] == {"type": "X", "message": "boom"}
