"""Cross-validation against the real service: a Celery worker process, Postgres and Redis."""

import io
import os
import signal
import statistics
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris

from datastore.splits import fold_parts, indices_digest, sample_order
from models.db import make_engine, make_session_factory
from models.settings import Settings
from models.spec import split_sizes
from tests.auth import new_key
from tests.e2e.conftest import finished, wait_for
from tests.e2e.test_embedded import embedded  # noqa: F401  (the fixture: `trainyard serve` on SQLite)
from tests.specs import DIGITS_CNN, IRIS_MLP, spec

pytestmark = pytest.mark.e2e


def cv_spec(**data):
    body = spec(IRIS_MLP, name="iris-cv", data={"folds": 3, "test_split": 0.1, **data}, fit={"epochs": 2})
    del body["data"]["validation_split"]
    return body


def test_a_three_fold_run_trains_three_folds_each_held_out_on_its_own_part(live: TestClient, e2e_settings: Settings):
    response = live.post("/v1/jobs", json=cv_spec())
    assert response.status_code == 202, response.text
    parent_id = response.json()["id"]

    run = wait_for(live, parent_id, finished, timeout=300)

    assert run["status"] == "succeeded" and run["stop_reason"] == "completed", run
    folds = run["folds"]
    assert [f["fold"] for f in folds] == [0, 1, 2] and {f["status"] for f in folds} == {"succeeded"}
    # Each fold held out the part the one split rule gives it (stratified by iris's labels), all different.
    seed, y = run["spec"]["seed"], load_iris().target
    order = sample_order(len(y), seed, True)
    n_test = split_sizes(len(y), 0.0, 0.1)[2]
    for fold in folds:
        expected = fold_parts(order, n_test=n_test, folds=3, fold=fold["fold"], seed=seed, shuffle=True, labels=y)
        assert fold["held_out"]["stratified"] is True
        assert fold["held_out"]["held_out_sha256"] == indices_digest(expected.held_out)
        assert fold["held_out"]["samples"] == len(expected.held_out) == 45
        counts = fold["held_out"]["label_counts"]
        assert counts == {str(c): int(n) for c, n in enumerate(np.bincount(y[expected.held_out]))}
        assert max(counts.values()) - min(counts.values()) <= 3  # stratified: near the 1:1:1 of iris
    assert len({f["held_out"]["held_out_sha256"] for f in folds}) == 3
    # Each fold is an ordinary job: its curves and its own detail.
    for fold in folds:
        curves = live.get(f"/v1/jobs/{fold['job_id']}/curves").json()
        assert curves["epoch"] == [1, 2] and len(curves["val_loss"]) == 2
        job = live.get(f"/v1/jobs/{fold['job_id']}").json()
        assert job["cv_parent_id"] == parent_id and job["data"]["splits"]["test"]["samples"] == n_test
    # The run reports mean ± std over its folds.
    val_losses = [f["metrics"]["val_loss"] for f in folds]
    stat = run["cv"]["metrics"]["val_loss"]
    assert stat["n"] == 3
    assert stat["mean"] == pytest.approx(statistics.fmean(val_losses))
    assert stat["std"] == pytest.approx(statistics.pstdev(val_losses))
    assert run["cv"]["metrics"]["val_accuracy"]["n"] == 3
    assert run["cv"]["test_metrics"]["loss"]["n"] == 3
    # The verdict every fold reached is reported once, for the whole run, with the folds it came from.
    whole_run = run["cv"]["findings"]["whole_run"]
    assert all(len(f["folds"]) >= 2 for f in whole_run)
    assert [p["fold"] for p in run["cv"]["findings"]["per_fold"]] == [0, 1, 2]
    # The run's own events stream: it starts with its first fold and ends with its last.
    types = [line.split(": ", 1)[1] for line in live.get(f"/v1/jobs/{parent_id}/events").text.splitlines()
             if line.startswith("event: ")]
    assert types == ["job.queued", "job.started", "job.succeeded"]


def test_folds_the_data_cannot_hold_are_a_422_naming_data_folds(live: TestClient):
    buffer = io.BytesIO()
    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    np.savez(buffer, x=x, y=np.repeat([0, 1, 2], [20, 6, 4]))
    dataset = live.post("/v1/datasets", files={"file": ("small.npz", buffer.getvalue())}).json()["id"]

    response = live.post("/v1/jobs", json=cv_spec(folds=5, test_split=0.0) | {"dataset": dataset})

    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "data.folds" and "class 2 has 4" in detail["message"]


def test_another_tenant_sees_neither_the_run_nor_its_folds(live: TestClient, e2e_settings: Settings):
    run = live.post("/v1/jobs", json=cv_spec()).json()
    folds = live.get(f"/v1/jobs/{run['id']}").json()["folds"]
    engine = make_engine(e2e_settings.database_dsn)
    intruder = {"Authorization": f"Bearer {new_key(make_session_factory(engine), 'intruder')}"}
    engine.dispose()

    for job_id in [run["id"], *(f["job_id"] for f in folds)]:
        assert live.get(f"/v1/jobs/{job_id}", headers=intruder).status_code == 404
        assert live.post(f"/v1/jobs/{job_id}/cancel", headers=intruder).status_code == 404
    listed = live.get("/v1/jobs", params={"cv_parent_id": run["id"]}, headers=intruder).json()["items"]
    assert listed == []
    live.post(f"/v1/jobs/{run['id']}/cancel")  # leave the worker free for the other tests
    assert wait_for(live, run["id"], finished, timeout=120)["status"] == "cancelled"


def test_embedded_mode_runs_a_cross_validation_run(embedded):  # noqa: F811
    api, _ = embedded  # SQLite, the SQLite broker, `trainyard serve`'s own worker
    run_id = api.post("/v1/jobs", json=cv_spec(folds=2, test_split=0.0)).json()["id"]

    deadline = time.monotonic() + 240
    while (run := api.get(f"/v1/jobs/{run_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, run
        time.sleep(0.25)

    assert run["status"] == "succeeded", run
    assert [f["status"] for f in run["folds"]] == ["succeeded", "succeeded"]
    assert run["cv"]["metrics"]["val_loss"]["n"] == 2
    assert sum(f["held_out"]["samples"] for f in run["folds"]) == 150  # iris, every sample held out once


def test_a_fold_whose_worker_is_killed_is_trained_again_and_the_run_ends_once(live: TestClient, worker):
    body = spec(DIGITS_CNN, name="digits-cv", data={"folds": 2, "test_split": 0.0},
                fit={"epochs": 10, "batch_size": 16})
    del body["data"]["validation_split"]
    run_id = live.post("/v1/jobs", json=body).json()["id"]
    first = live.get(f"/v1/jobs/{run_id}").json()["folds"][0]["job_id"]
    wait_for(live, first, lambda j: j["status"] == "running" and j["progress"]["epoch"] >= 2)

    for pid in worker.child_pids():  # the training process dies as if OOM-killed
        os.kill(pid, signal.SIGKILL)
    run = wait_for(live, run_id, finished, timeout=400)

    assert run["status"] == "succeeded", run
    assert live.get(f"/v1/jobs/{first}").json()["attempts"] == 2
    assert live.get(f"/v1/jobs/{first}/curves").json()["epoch"] == list(range(1, 11))  # resumed, not duplicated
    assert run["cv"]["metrics"]["val_loss"]["n"] == 2
    types = [line.split(": ", 1)[1] for line in live.get(f"/v1/jobs/{run_id}/events").text.splitlines()
             if line.startswith("event: ")]
    assert types == ["job.queued", "job.started", "job.succeeded"]  # the run ended once
