"""Ensembles against the real service: the API, a real Celery worker, Postgres and Redis.

Three small classifiers on a generated data set, each with its own input scaling and one
that outputs logits, are averaged into one model; its metrics and the members' are taken
on the same held-out samples, and the downloaded model (safe mode) predicts the mean of
what the members predict.
"""

import io
import uuid
from typing import Any

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.deps import get_queue
from api.queue import TrainingQueue
from models.db import make_engine, make_session_factory, utcnow
from models.enums import EnsembleStatus
from models.settings import Settings
from models.tables import Ensemble
from tests.auth import new_key
from tests.e2e.conftest import finished, wait_for
from tests.servers import wait_until
from worker.ensemble import run_ensemble
from worker.ensemble_reconciler import reconcile_ensembles

pytestmark = pytest.mark.e2e
SAMPLES, TEST_SPLIT = 600, 0.25


def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping classes in 4 features of very different scales (scaling matters)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, SAMPLES)
    centers = rng.normal(size=(3, 4)) * 1.5
    x = (centers[y] + rng.normal(size=(SAMPLES, 4))) * np.array([1.0, 10.0, 100.0, 0.1]) + np.array([0, 5, -50, 1])
    return x.astype("float32"), y.astype("int64")


def member(dataset: str, data: dict[str, Any], layers: list[dict], loss: Any, **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset, "data": {"validation_split": 0.2, "test_split": TEST_SPLIT, **data},
            "model": {"input_shape": [4], "layers": layers},
            "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.02}, "loss": loss, "metrics": ["accuracy"]},
            "fit": {"epochs": 2, "batch_size": 32}, "seed": 11, **extra}


def train(live: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = live.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = wait_for(live, response.json()["id"], finished)
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def members(live: TestClient) -> dict[str, Any]:
    x, y = blobs()
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    upload = live.post("/v1/datasets", files={"file": ("blobs.npz", buffer.getvalue())})
    assert upload.status_code in (200, 201), upload.text
    dataset = upload.json()["id"]
    dense = {"type": "Dense", "units": 16, "activation": "relu"}
    specs = [
        member(dataset, {"scale_x": "standardize"}, [dense, {"type": "Dense", "units": 3, "activation": "softmax"}],
               "sparse_categorical_crossentropy"),
        member(dataset, {"scale_x": "minmax"}, [{**dense, "units": 8}, {"type": "Dense", "units": 3}],
               {"type": "SparseCategoricalCrossentropy", "from_logits": True}),
        member(dataset, {"scale_x": "rescale", "one_hot": True},
               [{**dense, "units": 12}, {"type": "Dense", "units": 3, "activation": "softmax"}],
               "categorical_crossentropy"),
    ]
    jobs = [live.post("/v1/jobs", json=s) for s in specs]
    assert all(r.status_code == 202 for r in jobs), [r.text for r in jobs]
    done = [wait_for(live, r.json()["id"], finished) for r in jobs]
    assert all(j["status"] == "succeeded" for j in done), done
    return {"dataset": dataset, "x": x, "y": y, "jobs": done}


def wait_built(live: TestClient, ensemble_id: str) -> dict[str, Any]:
    def built() -> bool:
        return live.get(f"/v1/ensembles/{ensemble_id}").json()["status"] in ("succeeded", "failed")
    wait_until(built, 240, f"ensemble {ensemble_id} built")
    return live.get(f"/v1/ensembles/{ensemble_id}").json()


def test_an_ensemble_of_three_classifiers_is_evaluated_beside_its_members_and_predicts_their_mean(
        live: TestClient, members: dict[str, Any], e2e_settings: Settings):
    ids = [job["id"] for job in members["jobs"]]
    created = live.post("/v1/ensembles", json={"jobs": ids, "name": "three-mlps"})
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "queued"
    assert created.headers["Location"] == f"/v1/ensembles/{created.json()['id']}"

    ensemble = wait_built(live, created.json()["id"])

    assert ensemble["status"] == "succeeded", ensemble
    assert ensemble["kind"] == "classifier" and ensemble["members"] == ids and ensemble["model_available"]
    evaluation = ensemble["evaluation"]
    # Same seed and splits: the common held-out part is their whole test part.
    assert evaluation["held_out"] == {"part": "test", "samples": round(SAMPLES * TEST_SPLIT)}
    assert [m["job_id"] for m in evaluation["members"]] == ids
    for job, measured in zip(members["jobs"], evaluation["members"], strict=True):
        # The worker's numbers on the held-out part are those Keras reported on the job's own test part.
        assert measured["metrics"]["loss"] == pytest.approx(job["test_metrics"]["loss"], abs=2e-3), job["id"]
        assert measured["metrics"]["accuracy"] == pytest.approx(job["test_metrics"]["accuracy"], abs=1e-6)
    member_losses = [m["metrics"]["loss"] for m in evaluation["members"]]
    # Cross-entropy is convex in the probabilities: the average's is at most the members' mean.
    assert evaluation["ensemble"]["loss"] <= np.mean(member_losses) + 1e-6
    assert 0.0 <= evaluation["ensemble"]["accuracy"] <= 1.0

    download = live.get(f"/v1/ensembles/{ensemble['id']}/model")
    assert download.status_code == 200
    path = e2e_settings.data_dir / f"{ensemble['id']}.keras"
    path.write_bytes(download.content)
    model = keras.saving.load_model(path, safe_mode=True)
    rows = members["x"][:40]
    probabilities = []
    for job in members["jobs"]:  # each member's own predictions, scaled as it was trained (POST /predict)
        predicted = np.asarray(live.post(f"/v1/jobs/{job['id']}/predict", json={"x": rows.tolist()}).json()
                               ["predictions"])
        logits = isinstance(job["spec"]["compile"]["loss"], dict)
        probabilities.append(keras.ops.convert_to_numpy(keras.ops.softmax(predicted)) if logits else predicted)
    np.testing.assert_allclose(model.predict(rows, verbose=0), np.mean(probabilities, axis=0), atol=1e-5)

    listed = live.get("/v1/ensembles", params={"limit": 50}).json()
    assert ensemble["id"] in [e["id"] for e in listed["items"]]


def test_a_member_that_does_not_fit_is_a_422_naming_it(live: TestClient, members: dict[str, Any]):
    ids = [job["id"] for job in members["jobs"]]
    wider = train(live, member(members["dataset"], {"scale_x": "standardize"},
                               [{"type": "Dense", "units": 4, "activation": "softmax"}],
                               "sparse_categorical_crossentropy"))

    refused = live.post("/v1/ensembles", json={"jobs": [ids[0], wider["id"]]})

    assert refused.status_code == 422, refused.text
    detail = refused.json()["error"]["details"][0]
    assert detail["path"] == "jobs[1]" and wider["id"] in detail["message"] and "output_shape" in detail["message"]

    for body, path in (({"jobs": [ids[0]]}, "jobs"), ({"jobs": ids, "n_members": 3}, "n_members"),
                       ({"jobs": [ids[0], ids[0]]}, "jobs[1]"), ({"jobs": [ids[0], "job_nope"]}, "jobs[1]")):
        refused = live.post("/v1/ensembles", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"][0]["path"] == path


def test_another_tenant_can_neither_read_an_ensemble_nor_use_the_jobs(live: TestClient, members: dict[str, Any],
                                                                      e2e_settings: Settings):
    ids = [job["id"] for job in members["jobs"]]
    ensemble_id = live.post("/v1/ensembles", json={"jobs": ids[:2]}).json()["id"]
    engine = make_engine(e2e_settings.database_dsn)
    other = {"Authorization": f"Bearer {new_key(make_session_factory(engine), f'other-{uuid.uuid4().hex[:6]}')}"}
    engine.dispose()

    assert live.get(f"/v1/ensembles/{ensemble_id}", headers=other).status_code == 404
    assert live.get(f"/v1/ensembles/{ensemble_id}/model", headers=other).status_code == 404
    assert live.get("/v1/ensembles", headers=other).json()["items"] == []
    refused = live.post("/v1/ensembles", json={"jobs": ids[:2]}, headers=other)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["path"] == "jobs[0]"
    assert wait_built(live, ensemble_id)["status"] == "succeeded"


def test_a_build_whose_message_or_worker_was_lost_is_sent_again_and_built_once(
        live: TestClient, members: dict[str, Any], e2e_settings: Settings):
    ids = [job["id"] for job in members["jobs"]]
    lost_queue = TrainingQueue(e2e_settings.model_copy(update={"train_queue": f"void-{uuid.uuid4().hex[:6]}"}))
    live.app.dependency_overrides[get_queue] = lambda: lost_queue
    try:
        lost_message = live.post("/v1/ensembles", json={"jobs": ids}).json()["id"]
        lost_worker = live.post("/v1/ensembles", json={"jobs": ids[1:]}).json()["id"]
    finally:
        del live.app.dependency_overrides[get_queue]
    factory = make_session_factory(make_engine(e2e_settings.database_dsn))
    with factory() as session, session.begin():  # as a worker that died mid-build leaves it
        dead = session.get_one(Ensemble, lost_worker)
        dead.status, dead.claim, dead.attempts, dead.worker = EnsembleStatus.running, 1, 1, "gone:1"
        dead.heartbeat_at = dead.started_at = utcnow().replace(year=2000)
    assert live.get(f"/v1/ensembles/{lost_message}").json()["status"] == "queued"

    impatient = e2e_settings.model_copy(update={"queued_stale_after_s": 0.001})
    resent = reconcile_ensembles(factory, impatient, live.app.state.queue.send_ensemble)

    assert {lost_message, lost_worker} <= set(resent)
    assert wait_built(live, lost_message)["status"] == "succeeded"
    rebuilt = wait_built(live, lost_worker)
    assert rebuilt["status"] == "succeeded" and rebuilt["attempts"] == 2
    # Built: a later reconcile and a duplicate delivery change nothing.
    assert reconcile_ensembles(factory, impatient, live.app.state.queue.send_ensemble) == []
    run_ensemble(factory, lost_worker, settings=e2e_settings)
    assert live.get(f"/v1/ensembles/{lost_worker}").json() == rebuilt


def test_the_python_client_builds_an_ensemble_and_loads_its_model(live: TestClient, members: dict[str, Any]):
    from trainyard import Client

    client = Client(http=live)
    jobs = [client.jobs.get(job["id"]) for job in members["jobs"]]

    ensemble = client.ensembles.create(jobs[:2], name="two")

    assert ensemble.status == "succeeded" and ensemble.data["name"] == "two", ensemble.data
    assert [m["job_id"] for m in ensemble.evaluation["members"]] == [job.id for job in jobs[:2]]
    assert client.ensembles.get(ensemble.id).data == ensemble.data
    assert ensemble.id in [e.id for e in client.ensembles.list(limit=50)]
    assert ensemble.model().predict(members["x"][:5], verbose=0).shape == (5, 3)


def test_regressors_are_averaged_in_y_units_whatever_scale_y_each_trained_with(live: TestClient,
                                                                               e2e_settings: Settings):
    def regressor(units: int, **data: Any) -> dict[str, Any]:
        return {"dataset": "builtin:diabetes", "seed": 5, "fit": {"epochs": 2, "batch_size": 32},
                "data": {"validation_split": 0.2, "test_split": 0.2, "scale_x": "standardize", **data},
                "model": {"input_shape": [10], "layers": [{"type": "Dense", "units": units, "activation": "relu"},
                                                          {"type": "Dense", "units": 1}]},
                "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.05}, "loss": "mse"}}
    jobs = [train(live, regressor(16, scale_y="standardize")), train(live, regressor(8))]

    ensemble = wait_built(live, live.post("/v1/ensembles", json={"jobs": [j["id"] for j in jobs]}).json()["id"])

    assert ensemble["status"] == "succeeded" and ensemble["kind"] == "regression", ensemble
    evaluation = ensemble["evaluation"]
    assert evaluation["held_out"] == {"part": "test", "samples": round(442 * 0.2)}
    assert evaluation["loss"] == "mean_squared_error"
    unscaled = evaluation["members"][1]["metrics"]  # trained on y as it is: its own test loss, the same samples
    assert unscaled["loss"] == unscaled["mse"] == pytest.approx(jobs[1]["test_metrics"]["loss"], rel=1e-4)
    path = e2e_settings.data_dir / f"{ensemble['id']}.keras"
    path.write_bytes(live.get(f"/v1/ensembles/{ensemble['id']}/model").content)
    from sklearn.datasets import load_diabetes

    rows = load_diabetes().data[:20].astype("float32")
    answers = [np.asarray(live.post(f"/v1/jobs/{j['id']}/predict", json={"x": rows.tolist()}).json()["predictions"])
               for j in jobs]  # in y's units, scale_y undone
    np.testing.assert_allclose(keras.saving.load_model(path, safe_mode=True).predict(rows, verbose=0),
                               np.mean(answers, axis=0), rtol=1e-4, atol=1e-3)
