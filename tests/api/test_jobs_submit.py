"""POST /v1/jobs and :validate: what is accepted, what is refused, and that
a refusal stores nothing and sends nothing."""

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from models.settings import Settings
from models.tables import Job
from tests.api.conftest import job_count, sent_tasks
from tests.specs import DIGITS_CNN, spec


def test_submit_queues_the_job_and_sends_its_id_after_commit(
    client: TestClient, db_session: Session, settings: Settings, redis_client: redis.Redis, queued_messages
):
    at_commits: list[int] = []  # the broker's queue as each commit of the request ends
    event.listen(db_session, "after_commit", lambda _: at_commits.append(queued_messages()))

    response = client.post("/v1/jobs", json=DIGITS_CNN)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["progress"] == {"epoch": 0, "epochs": 3}
    assert response.headers["Location"] == f"/v1/jobs/{body['id']}"
    assert body["model_summary"]["output_shape"] == [None, 10]
    stored = db_session.get(Job, body["id"])
    assert stored is not None and stored.spec["seed"] == 7
    assert at_commits and set(at_commits) == {0}  # nothing was sent before the job's row committed
    assert sent_tasks(redis_client, settings.train_queue) == [("trainyard.train", {"job_id": body["id"]})]


def test_a_missing_seed_is_fixed_at_submit_so_reruns_are_identical(client: TestClient):
    body = client.post("/v1/jobs", json=spec(DIGITS_CNN, seed=None)).json()
    assert isinstance(body["spec"]["seed"], int)
    assert client.get(f"/v1/jobs/{body['id']}").json()["spec"]["seed"] == body["spec"]["seed"]  # stored, not redrawn


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"fit": {"n_epoch": 3}}, "fit.n_epoch", "did you mean 'epochs'"),
        ({"seeed": 3}, "seeed", "did you mean 'seed'"),
        ({"fit": {"epochs": "3"}}, "fit.epochs", "valid integer"),
        ({"data": {"validation_split": 1.5}}, "data.validation_split", "less than 1"),
        ({"model": {"input_shape": [8, 8, 1], "layers": [{"type": "Dens", "units": 3}]}},
         "model.layers[0].type", "Did you mean 'Dense'"),
        ({"model": {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 0}]}},
         "model.layers[1]", "Received: units=0"),
        ({"model": {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "unit": 3}]}},
         "model.layers[1].unit", "Did you mean 'units'"),
        ({"model": {"input_shape": [8, 8, 1], "layers": [{"type": "Lambda", "function": "x"}]}},
         "model.layers[0].type", "not allowed"),
        ({"model": {"input_shape": [8, 8, 1], "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 9}]}},
         "model.layers[0]", "cannot take an input of shape"),
        ({"compile": {"optimizer": {"type": "Adam", "lr": 0.1}, "loss": "mse"}}, "compile.optimizer.lr",
         "learning_rate"),
        ({"compile": {"loss": "categorical_crosentropy"}}, "compile.loss", "Did you mean 'categorical_crossentropy'"),
        ({"fit": {"callbacks": [{"type": "CSVLogger", "filename": "/etc/passwd"}]}}, "fit.callbacks[0].type",
         "not allowed"),
        ({"model": {"input_shape": [64], "layers": [{"type": "Dense", "units": 10}]}}, "model.input_shape",
         "samples of shape [8, 8, 1]"),
        ({"data": {"x": "images"}}, "data.x", "no array 'images'"),
        ({"dataset": "builtin:mnist"}, "dataset", "unknown built-in"),
        ({"dataset": "ds_nope"}, "dataset", "no dataset with id"),
        ({"fit": {"speed": {"steps_per_execution": 0}}}, "fit.speed.steps_per_execution", "from 1 to 10000"),
        ({"fit": {"speed": {"jit_compile": "xla"}}}, "fit.speed.jit_compile", "auto"),
        ({"fit": {"speed": {"mixed_precision": 1}}}, "fit.speed.mixed_precision", "boolean"),
        ({"fit": {"speed": {"xla": True}}}, "fit.speed.xla", "unknown field"),
    ],
)
def test_bad_specs_are_422_naming_the_field_and_store_nothing(
    client: TestClient, db_session: Session, queued_messages, change, path, fragment
):
    before = job_count(db_session)

    response = client.post("/v1/jobs", json=spec(DIGITS_CNN, **change))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    paths = [d["path"] for d in error["details"]]
    assert path in paths, error
    assert any(fragment in d["message"] for d in error["details"]), error
    assert job_count(db_session) == before
    assert queued_messages() == 0


def test_a_body_that_is_not_json_is_a_clear_422(client: TestClient):
    response = client.post("/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "body"


def test_validate_returns_summary_and_trains_nothing(client: TestClient, db_session: Session, queued_messages):
    before = job_count(db_session)

    response = client.post("/v1/jobs:validate", json=DIGITS_CNN)

    assert response.status_code == 200, response.text
    model = response.json()["model"]
    assert [layer["type"] for layer in model["layers"]] == ["InputLayer", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert model["layers"][1]["output_shape"] == [None, 8, 8, 8]
    assert model["params"] == (3 * 3 * 1 * 8 + 8) + (4 * 4 * 8 * 10 + 10)
    assert job_count(db_session) == before and queued_messages() == 0


def test_keras_json_model_is_accepted_and_lambda_refused(client: TestClient):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    import json

    config = json.loads(model.to_json())
    ok = client.post("/v1/jobs:validate", json=spec(DIGITS_CNN, model={"keras": config}))
    assert ok.status_code == 200, ok.text
    assert ok.json()["model"]["params"] == 64 * 10 + 10

    lam = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(lambda t: t * 2)])
    refused = client.post("/v1/jobs:validate", json=spec(DIGITS_CNN, model={"keras": json.loads(lam.to_json())}))
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["path"].startswith("model.keras")  # ...config.layers[1]: the Lambda


def test_idempotency_key_makes_one_job(client: TestClient, db_session: Session, queued_messages):
    headers = {"Idempotency-Key": "nightly-42"}
    first = client.post("/v1/jobs", json=DIGITS_CNN, headers=headers)
    second = client.post("/v1/jobs", json=DIGITS_CNN, headers=headers)

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert queued_messages() == 1

    other_body = client.post("/v1/jobs", json=spec(DIGITS_CNN, seed=8), headers=headers)
    assert other_body.status_code == 409
    assert "different request body" in other_body.json()["error"]["message"]
