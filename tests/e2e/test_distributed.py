"""Distributed mode: Postgres + Redis + a real Celery worker process."""

import io
import os
import signal
import uuid

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.deps import get_queue
from api.queue import TrainingQueue
from models.db import make_engine, make_session_factory
from models.settings import Settings
from tests.e2e.conftest import finished, wait_for
from tests.specs import DIGITS_CNN, IRIS_MLP, spec
from worker.reconciler import reconcile

pytestmark = pytest.mark.e2e


def test_a_cnn_on_digits_trains_end_to_end(live: TestClient, e2e_settings: Settings):
    job_id = live.post("/v1/jobs", json=spec(DIGITS_CNN, fit={"epochs": 4})).json()["id"]

    job = wait_for(live, job_id, finished)

    assert job["status"] == "succeeded", job
    assert job["stop_reason"] == "completed"
    assert job["timings"]["queued_s"] is not None
    curves = live.get(f"/v1/jobs/{job_id}/curves").json()
    assert curves["epoch"] == [1, 2, 3, 4]
    assert curves["loss"][-1] < curves["loss"][0]
    assert job["test_metrics"]["accuracy"] > 0.5  # ten classes: chance is 0.1

    download = live.get(f"/v1/jobs/{job_id}/model")
    assert download.status_code == 200
    path = e2e_settings.data_dir / "downloaded.keras"
    path.write_bytes(download.content)
    model = keras.saving.load_model(path, safe_mode=True)
    from sklearn.datasets import load_digits

    digits = load_digits()
    predictions = model.predict(digits.images[:200, ..., None] / 16.0, verbose=0).argmax(axis=1)
    assert (predictions == digits.target[:200]).mean() > 0.5


def test_cancelling_a_running_job_stops_it_within_an_epoch(live: TestClient):
    job_id = live.post("/v1/jobs", json=spec(DIGITS_CNN, fit={"epochs": 300})).json()["id"]
    wait_for(live, job_id, lambda j: j["status"] == "running" and j["progress"]["epoch"] >= 1)

    cancel = live.post(f"/v1/jobs/{job_id}/cancel")
    assert cancel.status_code == 202
    # The job as the cancel flag was committed: the epochs it had recorded by then.
    recorded = cancel.json()["progress"]["epoch"]
    job = wait_for(live, job_id, finished, timeout=60)

    assert job["status"] == "cancelled" and job["stop_reason"] == "cancelled"
    assert recorded <= job["progress"]["epoch"] <= recorded + 1  # at most the epoch in progress is finished


def test_a_job_whose_message_was_lost_is_found_and_run(live: TestClient, e2e_settings: Settings):
    # Submit through an API whose broker queue nobody consumes: the message is lost.
    lost_queue = TrainingQueue(e2e_settings.model_copy(update={"train_queue": f"void-{uuid.uuid4().hex[:6]}"}))
    real_queue = live.app.state.queue
    live.app.dependency_overrides[get_queue] = lambda: lost_queue
    try:
        job_id = live.post("/v1/jobs", json=IRIS_MLP).json()["id"]
    finally:
        del live.app.dependency_overrides[get_queue]
    assert live.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"

    factory = make_session_factory(make_engine(e2e_settings.database_dsn))
    impatient = e2e_settings.model_copy(update={"queued_stale_after_s": 0.001})
    requeued = reconcile(factory, impatient, real_queue.send)

    assert job_id in requeued
    assert wait_for(live, job_id, finished)["status"] == "succeeded"


def test_a_worker_killed_mid_training_loses_nothing(live: TestClient, worker):
    epochs = 12
    job_id = live.post("/v1/jobs", json=spec(DIGITS_CNN, fit={"epochs": epochs, "batch_size": 16})).json()["id"]
    wait_for(live, job_id, lambda j: j["status"] == "running" and j["progress"]["epoch"] >= 2)

    for pid in worker.child_pids():  # the training process dies as if OOM-killed
        os.kill(pid, signal.SIGKILL)
    job = wait_for(live, job_id, finished, timeout=300)

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    curves = live.get(f"/v1/jobs/{job_id}/curves").json()
    assert curves["epoch"] == list(range(1, epochs + 1))  # every epoch once: resumed, not duplicated


def test_datasets_uploaded_through_the_api_train_on_the_worker(live: TestClient):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    buffer = io.BytesIO()
    np.savez(buffer, features=x, label=y)
    dataset = live.post("/v1/datasets", files={"file": ("xor.npz", buffer.getvalue())}).json()
    body = spec(IRIS_MLP, dataset=dataset["id"], data={"x": "features", "y": "label", "one_hot": False},
                model={"input_shape": [4], "layers": [{"type": "Dense", "units": 1, "activation": "sigmoid"}]},
                compile={"loss": "binary_crossentropy", "optimizer": {"type": "Adam", "learning_rate": 0.05}},
                fit={"epochs": 15})
    job_id = live.post("/v1/jobs", json=body).json()["id"]

    job = wait_for(live, job_id, finished)

    assert job["status"] == "succeeded", job
    assert job["last_metrics"]["val_accuracy"] > 0.85
