"""POST /v1/jobs with data.folds: a cross-validation run (a parent and K queued fold jobs), or a clear
422 naming data.folds; its detail, list filter and cancel."""

import io
import statistics
from datetime import timedelta

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import NotFound
from api.services.cv import cv_aggregate
from models import lifecycle
from models.db import utcnow
from models.enums import JobStatus, StopReason
from models.holder import Holder
from models.lifecycle import Claim
from models.settings import Settings
from models.tables import Job
from tests.api.conftest import job_count, sent_tasks
from tests.specs import IRIS_MLP, spec

HOLDER = Holder(host="host-a", pid=1, started=100, boot=None, namespace=None)
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


def _end_fold(session: Session, fold: Job, metrics: dict, findings: list, status=JobStatus.succeeded) -> None:
    """What a worker leaves on a fold: its last epoch's metrics, its findings, its end."""
    held = lifecycle.claim(session, fold.id, holder=HOLDER, stale_before=utcnow() - timedelta(hours=1))
    assert held is not None
    held.last_metrics, held.findings = metrics, findings
    session.flush()
    assert lifecycle.finish(session, Claim.of(held), status=status, stop_reason=StopReason.completed)


def _finding(code: str) -> dict:
    return {"code": code, "severity": "warning", "phase": "training", "epoch": 2, "message": code,
            "evidence": {}, "suggestions": []}


def test_the_run_reports_mean_and_std_over_its_folds_and_the_findings_of_most_folds_once(
        client: TestClient, db_session: Session):
    parent_id = client.post("/v1/jobs", json=CV_IRIS).json()["id"]
    folds = db_session.scalars(select(Job).where(Job.cv_parent_id == parent_id).order_by(Job.fold)).all()
    losses = [0.4, 0.5, 0.9]
    for fold, loss, found in zip(folds, losses, [["overfitting"], ["overfitting", "unstable"], []], strict=True):
        _end_fold(db_session, fold, {"epoch": 3, "val_loss": loss}, [_finding(code) for code in found])

    run = client.get(f"/v1/jobs/{parent_id}").json()

    assert run["status"] == "succeeded" and run["cv"]["finished"] == 3
    assert run["cv"]["metrics"] == {"val_loss": {"mean": pytest.approx(0.6), "std": pytest.approx(
        statistics.pstdev(losses)), "n": 3}}
    assert [(f["code"], f["folds"]) for f in run["cv"]["findings"]["whole_run"]] == [("overfitting", [0, 1])]
    assert [[f["code"] for f in p["findings"]] for p in run["cv"]["findings"]["per_fold"]] == [[], ["unstable"], []]
    # The same aggregate for code that needs it without HTTP (a sweep's objective).
    aggregate = cv_aggregate(db_session, parent_id)
    assert aggregate.status is JobStatus.succeeded and aggregate.metrics["val_loss"]["mean"] == pytest.approx(0.6)
    with pytest.raises(NotFound):
        cv_aggregate(db_session, folds[0].id)  # a fold is not a run


def test_a_failed_fold_fails_the_run_and_is_left_out_of_the_aggregate(client: TestClient, db_session: Session):
    parent_id = client.post("/v1/jobs", json=spec(CV_IRIS, data={"folds": 2})).json()["id"]
    folds = db_session.scalars(select(Job).where(Job.cv_parent_id == parent_id).order_by(Job.fold)).all()
    _end_fold(db_session, folds[0], {"val_loss": 0.5}, [])
    assert client.get(f"/v1/jobs/{parent_id}").json()["status"] == "running"
    _end_fold(db_session, folds[1], {"val_loss": 9.0}, [], status=JobStatus.failed)

    run = client.get(f"/v1/jobs/{parent_id}").json()
    assert run["status"] == "failed" and run["stop_reason"] == "error"
    assert run["cv"]["metrics"]["val_loss"] == {"mean": 0.5, "std": 0.0, "n": 1}


def test_a_retry_of_a_run_is_a_new_run_and_its_model_is_its_folds(client: TestClient, db_session: Session):
    parent_id = client.post("/v1/jobs", json=CV_IRIS).json()["id"]

    retried = client.post(f"/v1/jobs/{parent_id}/retry", json={"patch": {"data": {"folds": 2}}})

    assert retried.status_code == 202, retried.text
    run = retried.json()
    assert run["cv_folds"] == 2 and run["parent_id"] == parent_id
    assert len(client.get(f"/v1/jobs/{run['id']}").json()["folds"]) == 2
    model = client.get(f"/v1/jobs/{parent_id}/model")
    assert model.status_code == 404 and "folds[].job_id" in model.json()["error"]["message"]
