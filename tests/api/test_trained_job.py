"""What a really trained job offers: predictions (through the validator pool) and its TensorBoard files."""

import io
import shutil
import tarfile

import keras
import numpy as np
from fastapi.testclient import TestClient

from api.routers.predict import MAX_ROWS
from datastore.artifacts import ArtifactStore
from models.enums import JobStatus
from models.spec import JobSpec
from tests.api.conftest import TENANT
from tests.specs import IRIS_MLP, spec
from tests.worker.conftest import insert_job
from tests.worker.test_tensorboard import scalars
from worker.data import prepare
from worker.training import find_job_dataset, run_training

KEEP_BEST = spec(IRIS_MLP, fit={"epochs": 5, "callbacks": [
    {"type": "ModelCheckpoint", "monitor": "val_loss", "save_best_only": True}]})
ROWS = np.random.default_rng(3).uniform([4.0, 2.0, 1.0, 0.1], [8.0, 4.5, 7.0, 2.5], size=(7, 4)).astype("float32")


def trained(session_factory, settings, body) -> str:
    job_id = insert_job(session_factory, body, tenant=TENANT)
    run_training(session_factory, job_id, settings=settings)
    return job_id


def test_predictions_are_the_downloaded_models_on_rows_scaled_as_in_training(client: TestClient, session_factory,
                                                                             settings):
    queued = insert_job(session_factory, IRIS_MLP, tenant=TENANT)
    assert client.post(f"/v1/jobs/{queued}/predict", json={"x": ROWS.tolist()}).status_code == 409
    job_id = trained(session_factory, settings, KEEP_BEST)

    response = client.post(f"/v1/jobs/{job_id}/predict", json={"x": ROWS.tolist()})

    assert response.status_code == 200, response.text
    answer = response.json()
    # The same rows through the downloaded model, scaled by the worker's own preparation of the
    # job's data (its training split's statistics), not by the file /predict reads.
    model = _downloaded(client, job_id, settings)
    job_spec = JobSpec.model_validate(KEEP_BEST)
    arrays = find_job_dataset(session_factory, ArtifactStore(settings.artifacts), job_spec.dataset).open()
    scaler = prepare(arrays, job_spec.data, job_spec.seed).x_scaler
    expected = model.predict(scaler(ROWS), verbose=0)
    np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, model.predict(ROWS, verbose=0), atol=1e-3)  # the scaling mattered
    assert answer["rows"] == 7 and answer["classes"] == ["0", "1", "2"]
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert answer["predicted_class"] == [str(i) for i in expected.argmax(axis=1)]

    # The same rows as an .npz upload (multipart, or the file as the body) answer the same.
    buffer = io.BytesIO()
    np.savez(buffer, x=ROWS)
    uploaded = client.post(f"/v1/jobs/{job_id}/predict", files={"file": ("rows.npz", buffer.getvalue())})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["predictions"] == answer["predictions"]
    raw = client.post(f"/v1/jobs/{job_id}/predict", content=buffer.getvalue(),
                      headers={"Content-Type": "application/octet-stream"})
    assert raw.json()["predictions"] == answer["predictions"]


def _downloaded(client: TestClient, job_id: str, settings) -> keras.Model:
    path = settings.data_dir / "downloaded.keras"
    path.write_bytes(client.get(f"/v1/jobs/{job_id}/model").content)
    return keras.saving.load_model(path, safe_mode=True)


def test_rows_that_do_not_fit_are_refused_clearly(client: TestClient, session_factory, settings):
    job_id = trained(session_factory, settings, spec(IRIS_MLP, fit={"epochs": 1}))

    wrong = client.post(f"/v1/jobs/{job_id}/predict", json={"x": [[1.0, 2.0, 3.0]]})
    assert wrong.status_code == 422
    error = wrong.json()["error"]
    assert error["details"][0]["path"] == "x"
    assert "[None, 4]" in error["message"] and "[1, 3]" in error["message"]
    too_many = client.post(f"/v1/jobs/{job_id}/predict", json={"x": [[0.0] * 4] * (MAX_ROWS + 1)})
    assert too_many.status_code == 413
    for body in ({"x": [[1, 2], [3]]}, {"x": "rows"}, {"rows": [[1, 2, 3, 4]]}, {"x": [["a", 1, 2, 3]]},
                 {"x": [["1.5", "2", "3", "4"]]}, {"x": []}):
        refused = client.post(f"/v1/jobs/{job_id}/predict", json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert client.post("/v1/jobs/job_nope/predict", json={"x": [[1, 2, 3, 4]]}).status_code == 404


def test_tensorboard_archive_holds_the_event_files_readable_by_tensorboard(client: TestClient, session_factory,
                                                                          settings, tmp_path):
    queued = insert_job(session_factory, IRIS_MLP, tenant=TENANT)
    assert client.get(f"/v1/jobs/{queued}/tensorboard").status_code == 404
    assert client.get("/v1/jobs/job_nope/tensorboard").status_code == 404
    job_id = trained(session_factory, settings, spec(IRIS_MLP, fit={"epochs": 3}))

    response = client.get(f"/v1/jobs/{job_id}/tensorboard")

    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        archive.extractall(tmp_path / "logs", filter="data")
    steps = {split: [step for step, _ in scalars(tmp_path / "logs" / job_id / split)["epoch_loss"]]
             for split in ("train", "validation")}
    assert steps == {"train": [1, 2, 3], "validation": [1, 2, 3]}

    # Another tenant's job, with files and a model of its own, is not this tenant's to read.
    other = insert_job(session_factory, IRIS_MLP, tenant="tenant-b", status=JobStatus.succeeded,
                       model_path=f"jobs/{job_id}/model.keras")
    store = ArtifactStore(settings.artifacts)
    shutil.copytree(store.tensorboard_dir(job_id), store.tensorboard_dir(other))
    assert client.get(f"/v1/jobs/{other}/tensorboard").status_code == 404
    assert client.post(f"/v1/jobs/{other}/predict", json={"x": ROWS.tolist()}).status_code == 404



def test_a_regressor_trained_on_a_scaled_target_answers_in_the_targets_units(client: TestClient, session_factory,
                                                                             settings):
    body = {"name": "diabetes", "dataset": "builtin:diabetes", "seed": 5,
            "data": {"validation_split": 0.2, "scale_x": "standardize", "scale_y": "standardize"},
            "model": {"input_shape": [10], "layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                                                       {"type": "Dense", "units": 1}]},
            "compile": {"optimizer": "adam", "loss": "mse"}, "fit": {"epochs": 2, "batch_size": 32}}
    job_id = trained(session_factory, settings, body)
    job_spec = JobSpec.model_validate(body)
    arrays = find_job_dataset(session_factory, ArtifactStore(settings.artifacts), job_spec.dataset).open()
    rows = np.asarray(arrays["x"][:5], dtype="float32")

    answer = client.post(f"/v1/jobs/{job_id}/predict", json={"x": rows.tolist()}).json()

    data = prepare(arrays, job_spec.data, job_spec.seed)
    model = _downloaded(client, job_id, settings)
    expected = data.y_scaler.inverse(model.predict(data.x_scaler(rows), verbose=0))
    np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-4, atol=1e-3)
    assert np.abs(expected).mean() > 10  # in the target's units (tens to hundreds), not standardized
    assert "classes" not in answer
