"""Dataset upload in each format, its description, and the lifecycle (list, show, delete, dedup)."""

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.enums import JobStatus
from models.settings import Settings
from models.tables import Dataset, Job
from tests.data_files import csv_bytes, image_zip, npz_bytes, sequences
from tests.specs import IRIS_MLP, spec
from worker.training import run_training


def upload(client: TestClient, content: bytes, filename: str = "data.npz"):
    return client.post("/v1/datasets", files={"file": (filename, content, "application/octet-stream")})


def dataset_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Dataset)) or 0


def stored_files(settings: Settings) -> list[str]:
    """What uploads wrote: the files under ``uploads/`` and ``datasets/`` (the root also holds the
    API's own stream secret in distributed mode, which no upload writes)."""
    root = settings.artifacts
    return sorted(str(p.relative_to(root)) for top in ("uploads", "datasets") for p in (root / top).rglob("*")
                  if p.is_file())


def test_upload_describes_arrays_and_deduplicates(client: TestClient, settings: Settings):
    x = np.random.default_rng(0).normal(size=(50, 4)).astype("float32") * np.array([1, 10, 100, 1000], "float32")
    content = npz_bytes(x=x, y=np.arange(50) % 3)

    first = upload(client, content)
    second = upload(client, content, filename="copy.npz")

    assert first.status_code == 201, first.text
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    body = first.json()
    assert body["arrays"] == {"x": {"shape": [50, 4], "dtype": "float32", "kind": "dense"},
                              "y": {"shape": [50], "dtype": "int64", "kind": "dense"}}
    assert body["samples"] == 50 and len(body["sha256"]) == 64
    x_stats = body["description"]["arrays"]["x"]["stats"]
    np.testing.assert_allclose(x_stats["std"], x.std(axis=0), rtol=1e-5)
    np.testing.assert_allclose(x_stats["max"], x.max(axis=0), rtol=1e-6)
    assert x_stats["sampled"] is False and body["description"]["samples"] == 50
    assert body["description"]["arrays"]["y"]["label_counts"] == {"0": 17, "1": 17, "2": 16}
    assert client.get(f"/v1/datasets/{body['id']}").json() == body
    folder = f"datasets/{body['sha256']}"
    assert stored_files(settings) == [f"{folder}/a000.npy", f"{folder}/a001.npy", f"{folder}/manifest.json"]


def test_an_uploaded_dataset_can_be_trained_on(client: TestClient, session_factory, db_session: Session,
                                               settings: Settings):
    content = npz_bytes(x=np.random.default_rng(0).normal(size=(40, 4)).astype("float32"), y=np.arange(40) % 3)
    dataset_id = upload(client, content).json()["id"]
    response = client.post("/v1/jobs", json=spec(IRIS_MLP, dataset=dataset_id, fit={"epochs": 2}))
    assert response.status_code == 202, response.text

    # What the worker does with the queued message: train the job from the uploaded files.
    run_training(session_factory, response.json()["id"], settings=settings)

    job = client.get(f"/v1/jobs/{response.json()['id']}").json()
    assert job["status"] == "succeeded" and job["progress"] == {"epoch": 2, "epochs": 2}, job
    assert sum(split["samples"] for split in job["data"]["splits"].values()) == 40  # every uploaded row
    assert job["model_available"] is True


def sequence_job(dataset_id: str, input_shape: list) -> dict:
    return spec(IRIS_MLP, dataset=dataset_id, data={"one_hot": False, "scale_x": None},
                model={"input_shape": input_shape, "layers": [{"type": "Masking"}, {"type": "GRU", "units": 4},
                                                              {"type": "Dense", "units": 2, "activation": "softmax"}]},
                compile={"loss": "sparse_categorical_crossentropy"})


def test_variable_length_sequences_are_described_and_checked_against_the_model(client: TestClient):
    data = sequences(n=40)
    body = upload(client, npz_bytes(**data)).json()

    assert body["arrays"]["x"] == {"shape": [40, None, 7], "dtype": "float32", "kind": "sequence"}
    lengths = body["description"]["arrays"]["x"]["lengths"]
    assert lengths["min"] == data["x_lengths"].min() and lengths["max"] == data["x_lengths"].max()
    assert lengths["p50"] == np.percentile(data["x_lengths"], 50)
    assert client.post("/v1/jobs", json=sequence_job(body["id"], [None, 7])).status_code == 202

    fixed = client.post("/v1/jobs", json=sequence_job(body["id"], [30, 7]))
    assert fixed.status_code == 422
    assert "x holds samples of shape [None, 7]" in fixed.json()["error"]["details"][0]["message"]


def test_a_csv_maps_text_labels_to_classes_and_columns_are_chosen_by_name(client: TestClient):
    body = upload(client, csv_bytes(n=60), "table.csv").json()

    described = body["description"]
    assert described["columns"] == ["a", "b", "c", "color", "target"]
    color = described["arrays"]["color"]
    assert color["column_type"] == "categorical" and color["categories"] == ["blue", "green", "red"]
    assert sum(color["label_counts"].values()) == 60 and set(color["label_counts"]) <= {"0", "1", "2"}
    assert described["arrays"]["a"]["column_type"] == "float" and described["arrays"]["target"]["label_counts"] is None
    regression = spec(IRIS_MLP, dataset=body["id"], data={"x": ["a", "b", "c"], "y": "target", "one_hot": False},
                      model={"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]}, compile={"loss": "mse"})
    assert client.post("/v1/jobs", json=regression).status_code == 202

    missing = client.post("/v1/jobs", json=spec(regression, data={"x": ["a", "size"]}))
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["loc"] == ["data", "x"]
    assert "no array 'size'" in missing.json()["error"]["details"][0]["message"]
    wrong = client.post("/v1/jobs", json=spec(regression, data={"x": ["a", "b"]}))
    assert wrong.status_code == 422 and "shape [2]" in wrong.json()["error"]["details"][0]["message"]


def test_an_image_folder_zip_stores_class_names_and_checks_image_size(client: TestClient, settings: Settings):
    body = upload(client, image_zip(per_class=5, size=12), "faces.zip").json()

    assert body["format"] == "images" and body["classes"] == ["horizontal", "vertical"]
    assert body["arrays"]["x"] == {"shape": [10, None, None, None], "dtype": "uint8", "kind": "images"}
    x = body["description"]["arrays"]["x"]
    assert x["image_sizes"]["height"] == {"min": 12, "max": 12, "mean": 12.0}
    assert x["modes"] == {"L": 10} and x["stats"]["features"] == 3
    assert body["description"]["arrays"]["y"]["label_counts"] == {"0": 5, "1": 5}
    images = sorted(p for p in stored_files(settings) if "/images/" in p)
    assert len(images) == 10 and images[0].endswith("/images/000000.jpg")  # renamed by index, never by member name
    cnn = spec(IRIS_MLP, dataset=body["id"], data={"image_size": [12, 12], "color_mode": "grayscale", "one_hot": False},
               model={"input_shape": [12, 12, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]},
               compile={"loss": "sparse_categorical_crossentropy"})
    assert client.post("/v1/jobs", json=cnn).status_code == 202
    rgb = client.post("/v1/jobs", json=spec(cnn, data={"color_mode": "rgb"}))
    assert rgb.status_code == 422 and "[12, 12, 3]" in rgb.json()["error"]["details"][0]["message"]


def test_builtins_are_listed_and_described_like_uploads(client: TestClient):
    listed = client.get("/v1/datasets").json()["items"]
    ids = [d["id"] for d in listed]
    assert {"builtin:digits", "builtin:iris", "builtin:wine", "builtin:diabetes", "builtin:breast_cancer"} <= set(ids)
    digits = client.get("/v1/datasets/builtin:digits").json()
    assert digits["arrays"]["x"]["shape"] == [1797, 8, 8, 1] and digits["samples"] == 1797
    assert digits["title"].startswith("8x8 handwritten digits")
    assert digits["description"]["arrays"]["x"]["stats"]["overall"]["max"] == 16.0
    assert digits["description"]["arrays"]["y"]["label_counts"]["0"] == 178
    assert client.get("/v1/datasets/builtin:nope").status_code == 404


def test_list_is_paginated_newest_first_without_descriptions(client: TestClient):
    ids = [upload(client, npz_bytes(x=np.full((3, 2), i, "float32"), y=np.zeros(3))).json()["id"] for i in range(3)]

    first = client.get("/v1/datasets", params={"limit": 2}).json()
    second = client.get("/v1/datasets", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    uploads = [d["id"] for d in first["items"] + second["items"] if not d["builtin"]]
    assert uploads == sorted(ids, reverse=True) and second["next_cursor"] is None
    assert all(d["description"] is None for d in first["items"])


def test_delete_refused_while_a_job_uses_it_then_allowed(client, db_session, settings: Settings):
    content = npz_bytes(x=np.zeros((30, 4), dtype="float32"), y=np.arange(30) % 3)
    dataset_id = upload(client, content).json()["id"]
    job_id = client.post("/v1/jobs", json=spec(IRIS_MLP, dataset=dataset_id)).json()["id"]

    refused = client.delete(f"/v1/datasets/{dataset_id}")
    assert refused.status_code == 409 and job_id in refused.json()["error"]["message"]
    db_session.get(Job, job_id).status = JobStatus.running
    db_session.commit()
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 409

    db_session.get(Job, job_id).status = JobStatus.succeeded
    db_session.commit()
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert stored_files(settings) == []
    assert client.delete("/v1/datasets/builtin:iris").status_code == 409


def preflight(client: TestClient, body: dict) -> dict[str, dict]:
    response = client.post("/v1/jobs:validate", json=body)
    assert response.status_code == 200, response.text
    return {f["code"]: f for f in response.json()["findings"]}


def test_sequences_get_the_scale_check_like_the_same_values_stored_dense(client: TestClient):
    # Story 1: pen strokes whose coordinates reach thousands, stored as variable-length sequences.
    data = sequences(n=40)
    data["x_values"] = data["x_values"] * 2000.0
    seq = upload(client, npz_bytes(**data)).json()["id"]
    steps = np.split(data["x_values"], np.cumsum(data["x_lengths"])[:-1])
    longest = int(data["x_lengths"].max())
    padded = np.stack([np.pad(s, ((0, longest - len(s)), (0, 0))) for s in steps])  # the same values, zero-padded
    dense = upload(client, npz_bytes(x=padded, y=data["y"])).json()["id"]

    as_sequences = preflight(client, sequence_job(seq, [None, 7]))["unscaled_inputs"]
    as_dense = preflight(client, sequence_job(dense, [longest, 7]))["unscaled_inputs"]

    assert as_sequences["evidence"]["x_abs_max"] == as_dense["evidence"]["x_abs_max"] > 1000
    standardized = spec(sequence_job(seq, [None, 7]), data={"scale_x": "standardize"})
    assert "unscaled_inputs" not in preflight(client, standardized)


def test_raw_image_pixels_get_the_scale_check_from_the_pixels_described_at_upload(client: TestClient):
    dataset_id = upload(client, image_zip(per_class=5, size=12), "faces.zip").json()["id"]
    cnn = spec(IRIS_MLP, dataset=dataset_id,
               data={"image_size": [12, 12], "color_mode": "grayscale", "one_hot": False, "scale_x": None},
               model={"input_shape": [12, 12, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]},
               compile={"loss": "sparse_categorical_crossentropy"})

    finding = preflight(client, cnn)["unscaled_inputs"]

    assert finding["evidence"]["x_abs_max"] > 200  # raw 0-255 pixels
    assert finding["suggestions"][0]["patch"] == {"data": {"scale_x": "rescale"}}
    assert "unscaled_inputs" not in preflight(client, spec(cnn, data={"scale_x": "rescale"}))
