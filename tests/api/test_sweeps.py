"""POST /v1/sweeps and reading one: what is accepted, and every bad space refused with 422 naming
``space.<path>`` and the value, before anything is stored or sent."""

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.settings import Settings
from models.tables import Job, Sweep
from tests.api.conftest import job_count, sent_tasks
from tests.specs import IRIS_MLP, spec

GRID = {"compile.optimizer.learning_rate": {"choice": [0.001, 0.01, 0.1]}}
BASE = spec(IRIS_MLP, compile={"optimizer": {"type": "Adam", "learning_rate": 0.01}})


def sweep_body(space: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"spec": BASE, "space": space or GRID, "sampler": "grid", "parallelism": 2, **extra}


def test_a_sweep_is_accepted_and_queues_its_first_trials_as_jobs(
    client: TestClient, db_session: Session, settings: Settings, redis_client: redis.Redis, queued_messages
):
    response = client.post("/v1/sweeps", json=sweep_body())
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["Location"] == f"/v1/sweeps/{body['id']}"
    assert (body["status"], body["trials_planned"], body["parallelism"]) == ("running", 3, 2)
    assert [(t["number"], t["status"], t["state"]) for t in body["trials"]] == [
        (0, "queued", "running"), (1, "queued", "running")]
    jobs = {t["job_id"]: t for t in body["trials"]}
    sent = [kwargs["job_id"] for _, kwargs in sent_tasks(redis_client, settings.train_queue)]
    assert sorted(sent) == sorted(jobs)
    for job_id, trial in jobs.items():
        job = client.get(f"/v1/jobs/{job_id}").json()  # an ordinary job
        rate = trial["params"]["compile.optimizer.learning_rate"]
        assert job["spec"]["compile"]["optimizer"] == {"type": "Adam", "learning_rate": rate}
        assert job["spec"]["seed"] == IRIS_MLP["seed"]
    listed = client.get("/v1/jobs", params={"sweep_id": body["id"]}).json()["items"]
    assert sorted((j["trial_number"], j["sweep_id"]) for j in listed) == [(0, body["id"]), (1, body["id"])]
    got = client.get(f"/v1/sweeps/{body['id']}").json()
    assert got["best"] is None and got["importances"] is None and len(got["trials"]) == 2
    assert [s["id"] for s in client.get("/v1/sweeps").json()["items"]] == [body["id"]]


def test_cancel_cancels_the_queued_trials(client: TestClient):
    body = client.post("/v1/sweeps", json=sweep_body()).json()
    cancelled = client.post(f"/v1/sweeps/{body['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    for trial in body["trials"]:
        assert client.get(f"/v1/jobs/{trial['job_id']}").json()["status"] == "cancelled"
    assert client.post(f"/v1/sweeps/{body['id']}/cancel").status_code == 409
    assert client.get("/v1/sweeps/swp_nope").status_code == 404


@pytest.mark.parametrize(("space", "extra", "path", "fragments"), [
    ({"fit.n_epochs": {"choice": [2, 3]}}, {}, "space.fit.n_epochs", ["fit.n_epochs=2", "unknown field"]),
    ({"fit.batch_size": {"choice": [16, 0]}}, {}, "space.fit.batch_size", ["fit.batch_size=0", "greater than"]),
    ({"model.layers.0.units": {"int": [0, 16]}}, {"sampler": "random"}, "space.model.layers.0.units",
     ["model.layers.0.units=0"]),
    ({"model.layers.7.units": {"choice": [4]}}, {}, "space.model.layers.7.units", ["not an index"]),
    ({"compile.optimizer.learning_rate": {"loguniform": [1e-4, 1e-1]}}, {}, "space.compile.optimizer.learning_rate",
     ["grid sampler takes"]),
    ({"webhook.url": {"choice": ["https://a.example"]}}, {}, "space.webhook.url", ["cannot be searched"]),
    ({"compile.optimizer.learning_rate": {"loguniform": [0, 1]}}, {"sampler": "tpe"},
     "space.compile.optimizer.learning_rate.loguniform", ["0 < low < high"]),
    (GRID, {"objective": {"metric": "val_f1"}}, "objective.metric", ["val_accuracy"]),
    ({"fit.batch_size": {"choice": list(range(1, 41))}, "fit.epochs": {"choice": list(range(1, 41))}},
     {"sampler": "random"}, "space", ["at most 64. Received: 80"]),
    # An optimizer given by its short name becomes {"type": "adam", ...} to take an argument: Keras wants the class.
    (GRID, {"spec": IRIS_MLP}, "space.compile.optimizer.learning_rate", ["=0.001", "Did you mean 'Adam'?"]),
])
def test_a_space_that_makes_an_invalid_spec_is_refused_naming_the_path_and_the_value(
    client: TestClient, db_session: Session, space, extra, path, fragments
):
    response = client.post("/v1/sweeps", json=sweep_body(space, **extra))
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details[0]["path"] == path, details
    for fragment in fragments:
        assert fragment in details[0]["message"], details
    assert job_count(db_session) == 0
    assert db_session.scalar(select(func.count()).select_from(Sweep)) == 0


def test_a_sweep_counts_against_the_tenants_queued_job_cap(client: TestClient, db_session: Session,
                                                            settings: Settings):
    settings.max_queued_jobs_per_tenant = 1
    assert client.post("/v1/jobs", json=spec(IRIS_MLP)).status_code == 202
    response = client.post("/v1/sweeps", json=sweep_body())
    assert response.status_code == 429, response.text
    assert db_session.scalar(select(func.count()).select_from(Job).where(Job.sweep_id.is_not(None))) == 0


def test_the_readme_example_is_accepted(client: TestClient):
    body = json.loads((Path(__file__).resolve().parents[2] / "examples" / "digits-sweep.json").read_text())
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    assert len(response.json()["trials"]) == body["parallelism"]


def test_a_space_whose_largest_epochs_pass_the_per_job_limit_is_refused_naming_the_path(
    client: TestClient, settings: Settings
):
    settings.max_epoch_samples = 120 * 50  # iris: 120 training samples; 50 epochs fit, 60 do not
    response = client.post("/v1/sweeps", json=sweep_body({"fit.epochs": {"int": [2, 60]}}, sampler="random"))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["details"][0]["path"] == "space.fit.epochs"
    assert "fit.epochs=60" in response.json()["error"]["message"]


def test_a_sweep_with_folds_makes_each_trial_a_cross_validation_run_and_sends_its_folds(
    client: TestClient, settings: Settings, redis_client: redis.Redis, queued_messages
):
    base = spec(BASE, data={"folds": 2})
    del base["data"]["validation_split"]  # each fold's held-out part is its validation data: val_loss is there
    response = client.post("/v1/sweeps", json=sweep_body(spec=base))
    assert response.status_code == 202, response.text
    trials = response.json()["trials"]
    runs = [client.get(f"/v1/jobs/{t['job_id']}").json() for t in trials]
    assert [(r["sweep_id"], r["trial_number"], r["cv"]["folds"]) for r in runs] == [
        (response.json()["id"], 0, 2), (response.json()["id"], 1, 2)]
    sent = sorted(kwargs["job_id"] for _, kwargs in sent_tasks(redis_client, settings.train_queue))
    assert sent == sorted(f["job_id"] for r in runs for f in r["folds"])  # the folds are trained, not the runs
    assert client.post(f"/v1/sweeps/{response.json()['id']}/cancel").status_code == 202
    assert {f["status"] for r in runs for f in client.get(f"/v1/jobs/{r['id']}").json()["folds"]} == {"cancelled"}


def test_a_validation_objective_needs_a_validation_split_or_folds(client: TestClient):
    base = spec(BASE, data={"validation_split": 0})
    response = client.post("/v1/sweeps", json=sweep_body(spec=base))
    assert response.status_code == 422 and response.json()["error"]["details"][0]["path"] == "objective.metric"
    assert "data.folds" in response.json()["error"]["message"] + json.dumps(response.json()["error"]["details"])


def test_a_sweep_webhook_is_checked_and_its_secret_never_shown(client: TestClient):
    hook = {"url": "https://93.184.215.14/in", "secret": "whsec-0123456789abcdef", "events": ["sweep.best"]}
    response = client.post("/v1/sweeps", json=sweep_body(webhook=hook))
    assert response.status_code == 202, response.text
    shown = client.get(f"/v1/sweeps/{response.json()['id']}").json()["webhook"]
    assert shown == {"url": hook["url"], "events": ["sweep.best"]} and "whsec" not in response.text
    assert client.get(f"/v1/sweeps/{response.json()['id']}/deliveries").json()["items"] == []  # nothing sent yet
    assert client.get("/v1/sweeps/swp_nope/deliveries").status_code == 404
    refused = client.post("/v1/sweeps", json=sweep_body(webhook={**hook, "url": "http://127.0.0.1:9/in"}))
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["path"] == "webhook.url"
    unknown = client.post("/v1/sweeps", json=sweep_body(webhook={**hook, "events": ["job.epoch"]}))
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["path"].startswith("webhook.events")
