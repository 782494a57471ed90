"""POST /v1/jobs with data.folds: a cross-validation run (a parent and K queued fold jobs), or a clear
422 naming data.folds; its detail, list filter and cancel."""

import io

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.settings import Settings
from models.tables import Job
from tests.api.conftest import job_count, sent_tasks
from tests.specs import IRIS_MLP, spec

CV_IRIS = spec(IRIS_MLP, data={"folds": 3, "validation_split": None})
del CV_IRIS["data"]["validation_split"]


def upload(client: TestClient, y: np.ndarray) -> str:
    buffer = io.BytesIO()
    x = np.random.default_rng(0).normal(size=(len(y), 4)).astype("float32")
    np.savez(buffer, x=x, y=y)
    response = client.post("/v1/datasets", files={"file": ("cv.npz", buffer.getvalue(), "application/octet-stream")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_spec_with_folds_queues_k_fold_jobs_under_one_parent(
        client: TestClient, db_session: Session, settings: Settings, redis_client: redis.Redis, queued_messages):
    response = client.post("/v1/jobs", json=CV_IRIS)

    assert response.status_code == 202, response.text
    parent = response.json()
    assert parent["cv_folds"] == 3 and parent["status"] == "queued"
    assert parent["spec"]["data"]["validation_split"] == 0.0  # the folds' held-out parts replace it
    folds = db_session.scalars(select(Job).where(Job.cv_parent_id == parent["id"]).order_by(Job.fold)).all()
    assert [f.fold for f in folds] == [0, 1, 2]
    assert all(f.status.value == "queued" and f.tenant == "tenant-a" and f.spec == folds[0].spec for f in folds)
    # The folds are trained, the parent never is.
    sent = sent_tasks(redis_client, settings.train_queue)
    assert sorted(kwargs["job_id"] for _, kwargs in sent) == sorted(f.id for f in folds)

    detail = client.get(f"/v1/jobs/{parent['id']}").json()
    assert [(f["fold"], f["job_id"], f["status"]) for f in detail["folds"]] == [
        (f.fold, f.id, "queued") for f in folds]
    assert detail["cv"]["folds"] == 3 and detail["cv"]["finished"] == 0 and detail["cv"]["metrics"] == {}
    fold_detail = client.get(f"/v1/jobs/{folds[1].id}").json()
    assert fold_detail["cv_parent_id"] == parent["id"] and fold_detail["fold"] == 1 and fold_detail["cv"] is None
    listed = client.get("/v1/jobs", params={"cv_parent_id": parent["id"]}).json()["items"]
    assert sorted(j["id"] for j in listed) == sorted(f.id for f in folds)


def test_cancelling_the_run_cancels_its_folds(client: TestClient, db_session: Session):
    parent_id = client.post("/v1/jobs", json=CV_IRIS).json()["id"]

    response = client.post(f"/v1/jobs/{parent_id}/cancel")

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    folds = client.get(f"/v1/jobs/{parent_id}").json()["folds"]
    assert [f["status"] for f in folds] == ["cancelled"] * 3
    assert client.post(f"/v1/jobs/{parent_id}/cancel").status_code == 409


@pytest.mark.parametrize(("y", "folds", "fragment"), [
    (np.repeat([0, 1], [25, 5]), 6, "class 1 has 5"),  # stratified: the smallest class
    (np.arange(8) % 2, 9, "there are 8"),  # more folds than samples
])
def test_folds_the_data_cannot_hold_are_422_naming_data_folds(client: TestClient, db_session: Session, queued_messages,
                                                             y, folds, fragment):
    dataset = upload(client, y)
    body = spec(IRIS_MLP, dataset=dataset, data={"x": "x", "y": "y", "folds": folds, "one_hot": True},
                fit={"epochs": 1, "batch_size": 4})
    del body["data"]["validation_split"]
    before = job_count(db_session)

    for path in ("/v1/jobs", "/v1/jobs:validate"):
        response = client.post(path, json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["details"][0]["path"] == "data.folds", error
        assert fragment in error["details"][0]["message"] and f"folds={folds}" in error["details"][0]["message"]
    assert job_count(db_session) == before and queued_messages() == 0


@pytest.mark.parametrize(("data", "diagnosis", "path", "fragment"), [
    ({"folds": 1}, None, "data.folds", "greater than or equal to 2"),
    ({"folds": 21}, None, "data.folds", "less than or equal to 20"),
    ({"folds": 3, "validation_split": 0.2}, None, "data", "validation_split cannot be used with folds"),
    ({"folds": 3}, {"auto_retry": 1}, "diagnosis.auto_retry", "cannot be used with data.folds"),
])
def test_folds_with_settings_that_do_not_go_with_them_are_422(client: TestClient, data, diagnosis, path, fragment):
    body = spec(IRIS_MLP, data=data)
    if "validation_split" not in data:
        del body["data"]["validation_split"]
    if diagnosis:
        body["diagnosis"] = diagnosis
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert any(d["path"] == path and fragment in d["message"] for d in details), details


def test_the_k_folds_count_against_the_queued_job_cap(client: TestClient, settings: Settings, db_session: Session):
    settings.max_queued_jobs_per_tenant = 4
    assert client.post("/v1/jobs", json=CV_IRIS).status_code == 202  # 3 folds queued
    before = job_count(db_session)

    response = client.post("/v1/jobs", json=spec(CV_IRIS, data={"folds": 2}))

    assert response.status_code == 429, response.text
    assert "needs 2" in response.json()["error"]["message"]
    assert job_count(db_session) == before
    assert client.post("/v1/jobs", json=IRIS_MLP).status_code == 202  # one more job still fits
