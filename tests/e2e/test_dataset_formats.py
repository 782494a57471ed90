"""Each upload format end to end: the API stores it, a real Celery worker trains on it."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.data_files import csv_bytes, image_zip, npz_bytes, sequences
from tests.e2e.conftest import finished, wait_for

pytestmark = pytest.mark.e2e


def upload(live: TestClient, name: str, content: bytes) -> dict:
    response = live.post("/v1/datasets", files={"file": (name, content)})
    assert response.status_code in (200, 201), response.text
    return response.json()


def train(live: TestClient, body: dict) -> dict:
    response = live.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = wait_for(live, response.json()["id"], finished)
    assert job["status"] == "succeeded", job
    return job


def test_a_gru_with_masking_learns_variable_length_sequences(live: TestClient):
    dataset = upload(live, "strokes.npz", npz_bytes(**sequences(n=300)))
    assert dataset["arrays"]["x"] == {"shape": [300, None, 7], "dtype": "float32", "kind": "sequence"}

    job = train(live, {
        "dataset": dataset["id"],
        "data": {"validation_split": 0.25, "scale_x": "standardize"},
        "model": {"input_shape": [None, 7], "layers": [
            {"type": "Masking", "mask_value": 0.0},
            {"type": "GRU", "units": 8},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01}, "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "fit": {"epochs": 8, "batch_size": 32},
        "seed": 3,
    })

    assert job["best_metrics"]["val_accuracy"] > 0.8  # two balanced classes: chance is 0.5
    assert job["data"]["splits"]["validation"]["samples"] == 75


def test_a_csv_regression_trains(live: TestClient):
    dataset = upload(live, "table.csv", csv_bytes(n=400))
    assert dataset["description"]["columns"] == ["a", "b", "c", "color", "target"]

    job = train(live, {
        "dataset": dataset["id"],
        "data": {"x": ["a", "b", "c", "color"], "y": "target", "validation_split": 0.2, "scale_x": "standardize"},
        "model": {"input_shape": [4], "layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                                                   {"type": "Dense", "units": 1}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.02}, "loss": "mse"},
        "fit": {"epochs": 15, "batch_size": 32},
        "seed": 1,
    })

    curves = live.get(f"/v1/jobs/{job['id']}/curves").json()
    assert curves["val_loss"][-1] < 0.1 * curves["val_loss"][0]  # the target's variance is 13


def test_an_image_folder_zip_trains_a_small_cnn(live: TestClient):
    dataset = upload(live, "stripes.zip", image_zip(per_class=40, size=16))
    assert dataset["classes"] == ["horizontal", "vertical"]

    job = train(live, {
        "dataset": dataset["id"],
        "data": {"image_size": [16, 16], "color_mode": "grayscale", "validation_split": 0.25, "scale_x": "rescale"},
        "model": {"input_shape": [16, 16, 1], "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.02}, "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "fit": {"epochs": 12, "batch_size": 16},
        "seed": 5,
    })

    assert job["best_metrics"]["val_accuracy"] >= 0.8
    assert job["data"]["classes"] == ["horizontal", "vertical"]
    assert np.isclose(sum(job["data"]["splits"]["train"]["label_counts"].values()), 60)
