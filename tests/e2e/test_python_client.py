"""The Python client against the real API and a real worker: a Keras model built here, trained there."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from trainyard import Client

pytestmark = pytest.mark.e2e


def three_blobs(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]).astype("float32")
    return x, y.astype("int64")


def test_fit_trains_remotely_and_the_job_answers_as_keras_would(live: TestClient, capsys):
    import keras

    x, y = three_blobs()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    client = Client(http=live)

    job = client.fit(model, x, y, validation_split=0.2, epochs=3, batch_size=16, seed=3,
                     callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)])

    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in shown] == ["1/3", "1/3", "2/3", "3/3"] and "val_loss" in shown[1]

    assert job.status == "succeeded", job.data
    spec = job.data["spec"]
    assert spec["model"]["layers"][0] == {"type": "Dense", "units": 8, "activation": "relu"}
    assert spec["compile"]["optimizer"] == {"type": "Adam", "learning_rate": 0.01}
    assert spec["fit"]["callbacks"] == [{"type": "EarlyStopping", "patience": 5}]
    curves = live.get(f"/v1/jobs/{job.id}/curves").json()
    history = job.history
    assert set(history) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(history[name] == curves[name] and len(curves[name]) == 3 for name in history)
    assert job.findings == live.get(f"/v1/jobs/{job.id}").json()["findings"] and job.verdict is not None
    # The downloaded model is the last epoch's: on the validation part (the last 20 %, as Keras takes
    # it) it scores what the job recorded for that epoch.
    trained = job.model()
    loss, accuracy = trained.evaluate(x[120:], y[120:], verbose=0)
    assert loss == pytest.approx(history["val_loss"][-1], rel=1e-3)
    assert accuracy == pytest.approx(history["val_accuracy"][-1], abs=1e-6)
    assert [j.id for j in client.jobs.list(limit=50)].count(job.id) == 1 and client.jobs.get(job.id).id == job.id


def test_the_same_arrays_are_one_dataset_and_are_sent_once(live: TestClient):
    x, y = three_blobs(seed=1)
    first = Client(http=live)
    dataset = first.datasets.upload(x, y)
    posts: list[str] = []
    live.event_hooks["request"].append(lambda request: posts.append(request.url.path))
    try:
        assert first.datasets.upload(x.copy(), y.copy()) == dataset and posts == []  # not sent again
        assert Client(http=live).datasets.upload(x, y) == dataset  # a new client: the server knows the bytes
        assert Client(http=live).datasets.upload(x[:-1], y[:-1]) != dataset
    finally:
        live.event_hooks["request"].pop()
    assert first.datasets.get(dataset)["arrays"]["x"]["shape"] == [150, 4]


def test_story_5_through_the_client_findings_then_retry_with_the_fix(live: TestClient):
    """Story 5's scans (0-255 pixels, RMSprop at 0.1): the findings name both causes, and retry with
    the unscaled_inputs finding's index (in job.findings, the API's one list) applies that fix."""
    import keras

    from bench.stories.data import scans

    arrays = scans(n=120, size=20)
    model = keras.Sequential([keras.Input((20, 20, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    job = Client(http=live).fit(model, arrays["x"], arrays["y"], validation_split=0.2, epochs=1, verbose=0)

    codes = [f["code"] for f in job.findings]
    assert {"unscaled_inputs", "learning_rate_extreme"} <= set(codes), codes
    assert codes == [f["code"] for f in live.get(f"/v1/jobs/{job.id}/findings").json()["findings"]]
    index = codes.index("unscaled_inputs")
    child = job.retry(finding=index)
    try:
        assert child.data["parent_id"] == job.id and child.data["origin"]["finding"] == "unscaled_inputs"
        assert child.data["spec"]["data"] != job.data["spec"]["data"]  # the fix scales the inputs
    finally:
        child.cancel()
