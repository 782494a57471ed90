"""Preflight through the API, the findings endpoint, and retry with a fix."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from models.enums import JobStatus
from models.tables import Job
from tests.api.conftest import job_count
from tests.specs import IRIS_MLP, spec

SOFTMAX_ON_ONE_UNIT = spec(IRIS_MLP, dataset="builtin:breast_cancer", data={"one_hot": False}, model={
    "input_shape": [30],
    "layers": [{"type": "Dense", "units": 8, "activation": "relu"},
               {"type": "Dense", "units": 1, "activation": "softmax"}]},
    compile={"loss": "binary_crossentropy"})
RAW_BATCH_OF_TWO = spec(IRIS_MLP, data={"scale_x": None}, fit={"batch_size": 2})


def test_error_findings_reject_with_422_unless_forced(client: TestClient, db_session: Session, queued_messages):
    before = job_count(db_session)

    refused = client.post("/v1/jobs", json=SOFTMAX_ON_ONE_UNIT)

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["details"][0]["path"] == "preflight.loss_target_mismatch"
    finding = error["details"][0]["finding"]
    assert finding["severity"] == "error"
    assert finding["suggestions"][0]["patch"]["model"]["layers"][-1]["activation"] == "sigmoid"
    assert job_count(db_session) == before and queued_messages() == 0

    forced = client.post("/v1/jobs", json={**SOFTMAX_ON_ONE_UNIT, "force": True})
    assert forced.status_code == 202
    assert [f["code"] for f in forced.json()["findings"]] == ["loss_target_mismatch"]


def test_warnings_go_with_the_accepted_job_and_validate_shows_them(client: TestClient):
    validated = client.post("/v1/jobs:validate", json=RAW_BATCH_OF_TWO).json()
    assert validated["valid"] is True
    assert {f["code"] for f in validated["findings"]} == {"tiny_batch"}
    accepted = client.post("/v1/jobs", json=RAW_BATCH_OF_TWO)
    assert accepted.status_code == 202
    job_id = accepted.json()["id"]
    findings = client.get(f"/v1/jobs/{job_id}/findings").json()
    assert [f["code"] for f in findings["findings"]] == ["tiny_batch"] and findings["verdict"] is None


def test_retry_with_a_findings_suggestion_links_parent_and_child(client: TestClient, db_session: Session):
    parent = client.post("/v1/jobs", json=RAW_BATCH_OF_TWO).json()

    retried = client.post(f"/v1/jobs/{parent['id']}/retry", json={"finding": 0, "suggestion": 0})

    assert retried.status_code == 202, retried.text
    child = retried.json()
    assert child["parent_id"] == parent["id"]
    assert child["spec"]["fit"]["batch_size"] == 32 and child["spec"]["seed"] == parent["spec"]["seed"]
    assert child["findings"] == []
    assert client.get(f"/v1/jobs/{parent['id']}").json()["children"] == [child["id"]]
    origin = db_session.get(Job, child["id"]).origin
    assert origin == {"finding": "tiny_batch", "suggestion": "batch size 32", "auto": False}
    assert client.get(f"/v1/jobs/{child['id']}").json()["origin"] == origin == child["origin"]


def test_retry_with_a_merge_patch_and_bad_retries(client: TestClient):
    parent = client.post("/v1/jobs", json=IRIS_MLP).json()
    patched = client.post(f"/v1/jobs/{parent['id']}/retry", json={"patch": {"fit": {"epochs": 7}, "name": None}})
    assert patched.status_code == 202 and patched.json()["progress"]["epochs"] == 7 and patched.json()["name"] is None

    for body, path in (({"finding": 5}, "finding"), ({}, ""), ({"patch": {"fit": {"n_epoch": 3}}}, "fit.n_epoch"),
                       ({"finding": 0, "patch": {}}, "")):
        response = client.post(f"/v1/jobs/{parent['id']}/retry", json=body)
        assert response.status_code == 422, (body, response.text)
        assert path in response.json()["error"]["details"][0]["path"]
    assert client.post("/v1/jobs/job_nope/retry", json={"patch": {}}).status_code == 404


def test_a_finished_jobs_verdict_is_shown(client: TestClient, db_session: Session):
    job_id = client.post("/v1/jobs", json=IRIS_MLP).json()["id"]
    job = db_session.get(Job, job_id)
    verdict = {"code": "verdict", "severity": "info", "phase": "final", "epoch": 3, "message": "Verdict: converged.",
               "evidence": {"verdict": "converged"}, "suggestions": []}
    job.status, job.findings = JobStatus.succeeded, [verdict]
    db_session.commit()
    assert client.get(f"/v1/jobs/{job_id}").json()["verdict"] == verdict
    assert client.get(f"/v1/jobs/{job_id}/findings").json()["verdict"] == verdict


def test_retrys_finding_index_means_one_finding_in_the_job_and_in_findings(client: TestClient, db_session: Session):
    parent = client.post("/v1/jobs", json=RAW_BATCH_OF_TWO).json()
    job = db_session.get(Job, parent["id"])
    verdict = {"code": "verdict", "severity": "info", "phase": "final", "epoch": 3, "message": "Verdict: stuck.",
               "evidence": {"verdict": "not_learning"}, "suggestions": [{"summary": "more epochs",
                                                                         "patch": {"fit": {"epochs": 9}}}]}
    job.status, job.findings = JobStatus.succeeded, [verdict, *job.findings]  # the verdict first: indexes shift if cut
    db_session.commit()
    in_job = client.get(f"/v1/jobs/{parent['id']}").json()["findings"]
    in_findings = client.get(f"/v1/jobs/{parent['id']}/findings").json()["findings"]
    assert in_job == in_findings and [f["code"] for f in in_findings] == ["verdict", "tiny_batch"]
    for index, finding in enumerate(in_findings):
        child = client.post(f"/v1/jobs/{parent['id']}/retry", json={"finding": index}).json()
        assert db_session.get(Job, child["id"]).origin["finding"] == finding["code"]
