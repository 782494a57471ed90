"""Budgets checked from shapes before anything is allocated (issue 8, items 1, 2 and 6).

The hostile specs run in a child process under a memory cap: if a check let one
through, that child aborts or runs out of memory, not the test run.
"""

import json
import math

import keras
import pytest

from keras_bridge.budget import FORWARD_BATCH_BYTES, Deferred, build_within_budget
from keras_bridge.errors import SpecError
from keras_bridge.layers import build_model
from keras_bridge.limits import Budgets
from keras_bridge.validate import check_spec
from models.settings import Settings
from models.spec import JobSpec
from tests.keras_bridge.capped import check_capped
from tests.specs import DIGITS_CNN, IRIS_MLP, spec


def deep(levels: int) -> list:
    return json.loads("[" * levels + "1" + "]" * levels)


def dense_model(*layers: dict, input_shape=(4,)) -> dict:
    return {"input_shape": list(input_shape),
            "layers": [*layers, {"type": "Dense", "units": 3, "activation": "softmax"}]}


def issues(body: dict, **settings) -> list[tuple[tuple, str]]:
    with pytest.raises(SpecError) as caught:
        check_spec(JobSpec.model_validate(body), settings=Settings(**settings))
    return [(i.loc, i.message) for i in caught.value.issues]


def test_a_300_deep_constant_is_refused_before_tensorflow_sees_it():
    # This value made TensorFlow abort the API process ("Too many dimensions in tensor").
    body = spec(IRIS_MLP, model=dense_model({"type": "Dense", "units": 2,
                                             "kernel_initializer": {"type": "Constant", "value": deep(300)}}))
    found = check_capped(body)["issues"]
    assert found[0]["loc"] == ["model", "layers", 0, "kernel_initializer"]
    assert "at most 8 levels" in found[0]["message"] and "301 levels" in found[0]["message"]


def test_a_300_deep_value_in_the_keras_form_is_refused_too():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, kernel_initializer=keras.initializers.Constant(1.0))(inputs)
    config = json.loads(keras.Model(inputs, outputs).to_json())
    config["config"]["layers"][1]["config"]["kernel_initializer"]["config"]["value"] = deep(300)
    found = check_capped(spec(IRIS_MLP, model={"keras": config}))["issues"]
    assert found[0]["loc"] == ["model", "keras", "config", "layers", 1, "config", "kernel_initializer", "config",
                               "value"]
    assert "300 levels" in found[0]["message"]


@pytest.mark.parametrize(("value", "words"), [
    ([0.5] * 10_001, "at most 10000 numbers or strings. Received: 10002"),
    ("x" * 1_001, "at most 1000 characters. Received: a string of 1001"),
    (deep(9), "at most 8 levels deep (lists and objects). Received: 10 levels"),
], ids=["scalars", "string", "depth"])
def test_argument_values_are_limited_with_the_limit_and_the_value_named(value, words):
    # The argument is the whole initializer object: its "type" counts as one more string, one more level.
    body = spec(IRIS_MLP, model=dense_model(
        {"type": "Dense", "units": 2, "kernel_initializer": {"type": "Constant", "value": value}}))
    found = issues(body)
    assert found == [(("model", "layers", 0, "kernel_initializer"), found[0][1])] and words in found[0][1]


def test_compile_and_callback_arguments_are_limited_too():
    body = spec(IRIS_MLP, compile={"loss": {"type": "Huber", "delta": deep(20)}},
                fit={"callbacks": [{"type": "EarlyStopping", "monitor": "m" * 5000}]})
    assert {loc for loc, _ in issues(body)} == {("compile", "loss", "delta"), ("fit", "callbacks", 0, "monitor")}


@pytest.mark.parametrize("units", [1_000_000_000, 125_000_000])
def test_a_huge_layer_is_refused_from_shapes_without_allocating(units):
    body = spec(IRIS_MLP, model=dense_model({"type": "Dense", "units": units}))
    found = check_capped(body)["issues"]
    assert found[0]["loc"] == ["model", "layers", 0]
    assert f"{4 * units + units:,}" in found[0]["message"] and "limit of 50,000,000" in found[0]["message"]


def test_the_parameter_limit_is_a_setting():
    body = spec(IRIS_MLP, model=dense_model({"type": "Dense", "units": 16}, {"type": "Dense", "units": 64}))
    found = issues(body, max_model_params=1_000)
    assert found[0][0] == ("model", "layers", 1) and "limit of 1,000" in found[0][1]  # the biggest layer is named


def test_the_layer_count_is_checked_from_the_spec_in_both_forms():
    many = [{"type": "Dense", "units": 2} for _ in range(10)]
    found = issues(spec(IRIS_MLP, model=dense_model(*many)), max_layers=10)
    assert found == [(("model", "layers"),
                      "a model may have at most 10 layers (nested ones included). Received: 11 layers.")]

    wrapped = [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2, "return_sequences": True}}] * 3
    found = issues(spec(IRIS_MLP, model=dense_model(*wrapped, input_shape=(3, 4))), max_layers=5)
    assert "Received: 7 layers" in found[0][1]

    stack = keras.Sequential([keras.Input((4,)), *(keras.layers.Dense(2) for _ in range(10))])
    found = issues(spec(IRIS_MLP, model={"keras": json.loads(stack.to_json())}), max_layers=10)
    assert found[0][0] == ("model", "keras") and "Received: 11 layers" in found[0][1]  # the InputLayer counts


def test_a_batch_that_cannot_fit_names_batch_size_and_image_size():
    body = spec(DIGITS_CNN, data={"image_size": [4096, 4096]}, fit={"batch_size": 32}, model=dense_model(
        {"type": "Conv2D", "filters": 8, "kernel_size": 3}, {"type": "GlobalAveragePooling2D"},
        input_shape=(4096, 4096, 3)))
    found = dict(issues(body))
    assert set(found) == {("fit", "batch_size"), ("data", "image_size")}
    batch_size = found[("fit", "batch_size")]
    assert "a worker offers 4.00 GiB" in batch_size and "at most batch_size=" in batch_size


def test_the_worker_memory_is_a_setting_and_the_estimate_is_in_the_summary():
    summary = check_spec(JobSpec.model_validate(DIGITS_CNN))
    memory = summary["memory"]
    assert memory["limit_bytes"] == 4 * 1024**3 and memory["batch_size"] == 64
    assert memory["batch_bytes"] == memory["inputs_bytes"] + memory["activations_bytes"] + memory["weights_bytes"]
    # Adam: weights, gradients and two slots, all float32.
    assert memory["weights_bytes"] == summary["params"] * 4 * 4
    # One batch: 64 images of 8x8x1 and 64 targets of 10, float32.
    assert memory["inputs_bytes"] == 64 * (64 + 10) * 4
    found = dict(issues(DIGITS_CNN, worker_memory_bytes=memory["batch_bytes"] - 1))
    assert set(found) == {("fit", "batch_size")}


def test_shapes_only_building_allocates_nothing_until_materialized():
    spec_ = JobSpec.model_validate(spec(IRIS_MLP, model=dense_model({"type": "Dense", "units": 8})))
    with Deferred() as deferred:
        model = build_model(spec_.model)
    assert deferred.variables and all(v._value is None for v in model.weights)
    assert sum(math.prod(v.shape) for v in model.weights) == 4 * 8 + 8 + 8 * 3 + 3
    deferred.materialize()
    assert all(v._value is not None for v in model.weights)
    assert model.predict(keras.ops.zeros((2, 4)), verbose=0).shape == (2, 3)


def test_the_worker_build_materializes_only_within_budget():
    spec_ = JobSpec.model_validate(IRIS_MLP)
    model, estimate = build_within_budget(spec_, Budgets(), 2, materialize=True)
    assert all(v._value is not None for v in model.weights) and estimate.batch_bytes > 0
    with pytest.raises(SpecError):
        build_within_budget(spec_, Budgets(max_params=10), 2, materialize=True)


@pytest.mark.parametrize(("loss", "metrics", "units", "activation"), [
    ("sparse_categorical_crossentropy",
     ["accuracy", "sparse_top_k_categorical_accuracy", {"type": "SparseCategoricalAccuracy"}], 3, "softmax"),
    ("categorical_crossentropy", ["accuracy", {"type": "AUC"}, {"type": "F1Score"}], 3, "softmax"),
    ("binary_crossentropy", ["accuracy", {"type": "AUC"}, {"type": "Precision"}], 1, "sigmoid"),
    ({"type": "Huber", "delta": 2.0}, ["mae", {"type": "R2Score"}, {"type": "RootMeanSquaredError"}], 1, None),
])
def test_the_loss_and_metric_probe_accepts_what_trains(loss, metrics, units, activation):
    body = spec(IRIS_MLP, compile={"loss": loss, "metrics": metrics},
                model={"input_shape": [4], "layers": [{"type": "Dense", "units": units, "activation": activation}]})
    check_spec(JobSpec.model_validate(body))


@pytest.mark.parametrize(("compile_", "where"), [
    ({"metrics": ["Mean"]}, ("compile", "metrics", 0)),  # Mean takes values, not (y_true, y_pred)
    ({"loss": "ctc"}, ("compile", "loss")),  # CTC needs a (batch, time, classes) output
], ids=["Mean-as-metric", "ctc-on-dense"])
def test_the_probe_refuses_what_fails_on_the_first_training_step(compile_, where):
    found = issues(spec(IRIS_MLP, compile=compile_))
    assert found[0][0] == where and "cannot be computed on the model's output" in found[0][1], found


def test_what_the_probe_refuses_does_fail_in_training():
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["Mean"])
    with pytest.raises(Exception, match="sample_weight"):
        model.fit(np.zeros((4, 4)), np.zeros((4, 3)), verbose=0)


def test_forward_batches_fill_the_training_step_s_memory_and_never_shrink_below_the_batch():
    body = spec(DIGITS_CNN, fit={"batch_size": 16})
    _, estimate = build_within_budget(JobSpec.model_validate(body), Budgets.from_settings(Settings()), 2,
                                      materialize=False)
    big = estimate.forward_batch_size(10**9)
    # A forward pass holds each sample's inputs and activations once (the estimate counts activations twice).
    per_sample = (estimate.inputs_bytes + estimate.activations_bytes // 2) / 16
    room = max(estimate.inputs_bytes + estimate.activations_bytes, FORWARD_BATCH_BYTES)
    assert big > 16 and big * per_sample <= room
    assert estimate.forward_batch_size(100) == 100  # a small split: one batch
    assert estimate.forward_batch_size(5) == 16  # never below the training batch
