"""Namespaces and budgets surface through the API as 422s with the path (issue 8).

The destructive forms of these specs (a 300-deep value, a billion units) are run
against ``check_spec`` in a memory-capped child in tests/keras_bridge; here the same
rules are reached with harmless sizes, through the real routes.
"""

import json

import keras
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.api.conftest import job_count
from tests.specs import DIGITS_CNN, spec

SET_MAX_EPOCHS = {"module": "keras.config", "class_name": "function", "config": "set_max_epochs",
                  "registered_name": None}


def small_model(*layers: dict) -> dict:
    return {"input_shape": [8, 8, 1],
            "layers": [*layers, {"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]}


def refusal(response) -> tuple[int, list[str]]:
    return response.status_code, [d["path"] for d in response.json()["error"]["details"]]


def test_a_function_from_another_module_is_a_422_and_no_job(client: TestClient, db_session: Session):
    body = spec(DIGITS_CNN, model=small_model({"type": "Dense", "units": 4, "activation": SET_MAX_EPOCHS}))
    assert refusal(client.post("/v1/jobs:validate", json=body)) == (422, ["model.layers[0].activation"])
    assert client.post("/v1/jobs", json=body).status_code == 422
    assert job_count(db_session) == 0
    assert keras.config.max_epochs() is None


def test_the_keras_form_with_a_hostile_activation_is_a_422(client: TestClient):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    config = json.loads(model.to_json())
    config["config"]["layers"][-1]["config"]["activation"] = SET_MAX_EPOCHS
    status, paths = refusal(client.post("/v1/jobs:validate", json=spec(DIGITS_CNN, model={"keras": config})))
    assert status == 422 and paths[0].startswith("model.keras.config.layers[") and paths[0].endswith(".activation")


def test_an_over_deep_argument_is_a_422_naming_it(client: TestClient):
    body = spec(DIGITS_CNN, model=small_model(
        {"type": "Dense", "units": 2,
         "kernel_initializer": {"type": "Constant", "value": json.loads("[" * 9 + "1" + "]" * 9)}}))
    response = client.post("/v1/jobs:validate", json=body)
    assert refusal(response) == (422, ["model.layers[0].kernel_initializer"])
    assert "at most 8 levels" in response.json()["error"]["details"][0]["message"]


def test_parameter_and_memory_budgets_come_from_the_settings(client: TestClient, monkeypatch):
    # The API's settings travel with each spec to the validator processes (started long before).
    settings = client.app.state.settings
    monkeypatch.setattr(settings, "max_model_params", 500)
    response = client.post("/v1/jobs:validate", json=DIGITS_CNN)
    assert refusal(response) == (422, ["model.layers[3]"]) and "limit of 500" in response.text

    monkeypatch.setattr(settings, "max_model_params", 50_000_000)
    monkeypatch.setattr(settings, "worker_memory_bytes", 100_000)
    assert refusal(client.post("/v1/jobs:validate", json=DIGITS_CNN)) == (422, ["fit.batch_size"])


def test_the_summary_carries_the_memory_estimate(client: TestClient):
    response = client.post("/v1/jobs:validate", json=DIGITS_CNN)
    assert response.status_code == 200
    memory = response.json()["model"]["memory"]
    assert 0 < memory["batch_bytes"] < memory["limit_bytes"] == 4 * 1024**3
