"""The ensemble model (``worker.ensemble_model``) and its metrics (``worker.ensemble_metrics``), held to Keras."""

import keras
import numpy as np
import pytest

from models.enums import TaskKind
from worker.data import Scaler
from worker.ensemble_metrics import held_out_metrics, loss_name
from worker.ensemble_model import Member, assemble

RNG = np.random.default_rng(0)


def mlp(outputs: int, activation: str | None, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, activation="tanh"),
                             keras.layers.Dense(outputs, activation=activation)])


def test_the_saved_ensemble_loads_in_safe_mode_and_averages_each_member_as_it_predicts_alone(tmp_path):
    standardize = Scaler(np.array([1.0, -2.0, 30.0], "float32"), np.array([2.0, 0.5, 10.0], "float32"))
    rescale = Scaler(np.zeros(1, "float32"), np.array([40.0], "float32"))  # one statistic for every feature
    members = [Member("job_a", mlp(3, "softmax", 1), standardize, None, None),
               Member("job_b", mlp(3, None, 2), rescale, None, "softmax"),  # logits
               Member("job_c", mlp(3, "softmax", 3), None, None, None)]
    x = (RNG.normal(size=(16, 3)) * [2, 0.5, 10] + [1, -2, 30]).astype("float32")
    alone = [members[0].model.predict(standardize(x), verbose=0),
             keras.ops.convert_to_numpy(keras.ops.softmax(members[1].model.predict(rescale(x), verbose=0))),
             members[2].model.predict(x, verbose=0)]

    ensemble, branches = assemble(members)
    ensemble.save(tmp_path / "e.keras")
    loaded = keras.saving.load_model(tmp_path / "e.keras", safe_mode=True)

    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.mean(alone, axis=0), atol=1e-6)
    *each, average = branches.predict(x, verbose=0)
    for got, expected in zip(each, alone, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(average, np.mean(alone, axis=0), atol=1e-6)
    assert not [layer for layer in loaded.layers if isinstance(layer, keras.layers.Lambda)]


def test_a_regressor_trained_on_a_scaled_y_is_averaged_in_y_units():
    y_scaler = Scaler(np.array([100.0], "float32"), np.array([5.0], "float32"))
    members = [Member("job_a", mlp(1, None, 4), None, y_scaler, None),
               Member("job_b", mlp(1, None, 5), None, None, None)]
    x = RNG.normal(size=(8, 3)).astype("float32")
    expected = (y_scaler.inverse(members[0].model.predict(x, verbose=0)) + members[1].model.predict(x, verbose=0)) / 2

    ensemble, _ = assemble(members)

    np.testing.assert_allclose(ensemble.predict(x, verbose=0), expected, rtol=1e-5)


def keras_value(loss: keras.losses.Loss, y, p) -> float:
    return float(keras.ops.convert_to_numpy(loss(y, p)))


def test_classifier_metrics_are_keras_cross_entropy_and_accuracy_whatever_the_label_encoding():
    p = keras.ops.convert_to_numpy(keras.ops.softmax(RNG.normal(size=(50, 4)) * 3)).astype("float32")
    labels = RNG.integers(0, 4, 50)
    loss = loss_name(TaskKind.classifier, False, ["sparse_categorical_crossentropy"])
    sparse = held_out_metrics(TaskKind.classifier, loss, p, labels)
    one_hot = held_out_metrics(TaskKind.classifier, loss, p, np.eye(4)[labels])

    expected = keras_value(keras.losses.SparseCategoricalCrossentropy(), labels, p)
    assert sparse["loss"] == pytest.approx(expected, rel=1e-5) and one_hot == sparse
    assert sparse["accuracy"] == np.mean(p.argmax(axis=1) == labels)


def test_binary_and_regression_metrics_are_keras_s():
    p = RNG.uniform(0.01, 0.99, size=(40, 1)).astype("float32")
    labels = RNG.integers(0, 2, 40)
    binary = held_out_metrics(TaskKind.classifier, loss_name(TaskKind.classifier, True, ["binary_crossentropy"]),
                              p, labels)
    assert binary["loss"] == pytest.approx(keras_value(keras.losses.BinaryCrossentropy(), labels[:, None], p), rel=1e-5)
    assert binary["accuracy"] == np.mean((p[:, 0] > 0.5) == labels)

    y, predicted = RNG.normal(size=30), RNG.normal(size=(30, 1))
    loss = loss_name(TaskKind.regression, False, ["mean_absolute_error", "mean_absolute_error"])
    metrics = held_out_metrics(TaskKind.regression, loss, predicted, y)
    assert metrics["mae"] == pytest.approx(keras_value(keras.losses.MeanAbsoluteError(), y[:, None], predicted))
    assert metrics["mse"] == pytest.approx(keras_value(keras.losses.MeanSquaredError(), y[:, None], predicted))
    assert metrics["loss"] == metrics["mae"] and loss == "mean_absolute_error"
    assert loss_name(TaskKind.regression, False, ["mean_absolute_error", "huber"]) == "mean_squared_error"
