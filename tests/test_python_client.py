"""What the Python client refuses, before any request: Keras fit() arguments the service cannot honour,
models it cannot express, specs the API would refuse. (Training through it: tests/e2e/test_python_client.py.)"""

import httpx
import keras
import numpy as np
import pytest
from pydantic import ValidationError

from trainyard import Client, Unsupported

X, Y = np.zeros((20, 4), "float32"), np.zeros(20, "int64")


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
def client(sent: list[httpx.Request]) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)
    return Client(http=httpx.Client(base_url="http://trainyard.test", transport=httpx.MockTransport(answer)))


def mlp(*layers: keras.layers.Layer) -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), *(layers or [keras.layers.Dense(3, activation="softmax")])])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(("args", "says"), [
    ({"class_weight": {0: 1.0, 1: 2.0}}, "class weights"),
    ({"sample_weight": np.ones(20)}, "per-sample weights"),
    ({"validation_data": (X, Y)}, "validation_split"),
    ({"steps_per_epoch": 3}, "all the training samples"),
    ({"initial_epoch": 2}, "epoch 0"),
    ({"shuffle": False}, "shuffles"),
])
def test_fit_arguments_the_service_cannot_honour_are_refused_before_sending(client, sent, args, says):
    with pytest.raises(Unsupported, match=says):
        client.fit(mlp(), X, Y, epochs=2, **args)
    assert sent == []


def test_keras_defaults_of_refused_arguments_and_unknown_arguments(client, sent):
    with pytest.raises(TypeError, match="n_epoch"):
        client.fit(mlp(), X, Y, n_epoch=2)
    with pytest.raises(Unsupported, match="generator"):
        client.fit(mlp(), (row for row in X), Y, initial_epoch=0, validation_freq=1)
    assert sent == []


class Scaled(keras.layers.Dense):
    pass


class Subclassed(keras.Model):
    def call(self, x):
        return x


@pytest.mark.parametrize(("model", "callbacks", "says"), [
    (lambda: mlp(Scaled(3)), [], "only Keras's own layers"),
    (lambda: mlp(keras.layers.Dense(3, trainable=False)), [], "frozen layer"),
    (lambda: mlp(keras.layers.Dense(3, dtype="float16")), [], "float32"),
    (lambda: keras.Sequential([keras.layers.Dense(3)]), [], "keras.Input"),
    (lambda: mlp(), [keras.callbacks.CSVLogger("log.csv")], "CSVLogger cannot run on the service"),
    (lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), [], "compile the model first"),
])
def test_what_cannot_be_expressed_is_refused_with_what_to_do(client, sent, model, callbacks, says):
    with pytest.raises(Unsupported, match=says):
        client.fit(model(), X, Y, callbacks=callbacks)
    assert sent == []


def test_a_subclassed_model_is_refused():
    from trainyard.translate import model_spec

    model = Subclassed()
    model.build((None, 4))
    with pytest.raises(Unsupported, match="subclassed model"):
        model_spec(model)


def test_a_functional_model_goes_as_its_json_and_a_sequential_one_as_readable_layers():
    from trainyard.translate import model_spec

    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert "config" in model_spec(functional).keras
    layers = mlp(keras.layers.Dense(8, activation="relu", kernel_initializer="he_normal"), keras.layers.Dropout(0.25))
    assert [layer.model_dump() for layer in model_spec(layers).layers] == [
        {"type": "Dense", "units": 8, "activation": "relu", "kernel_initializer": {"type": "HeNormal"}},
        {"type": "Dropout", "rate": 0.25}]


def test_a_spec_with_an_unknown_field_is_refused_as_the_api_refuses_it(client, sent):
    with pytest.raises(ValidationError, match="n_epoch"):
        client.jobs.submit({"dataset": "builtin:iris", "model": {"input_shape": [4], "layers": [{"type": "Dense"}]},
                            "compile": {"loss": "mse"}, "fit": {"n_epoch": 3}})
    assert sent == []


def test_callbacks_go_with_every_setting_the_user_changed():
    from trainyard.translate import callback_specs

    specs = callback_specs([
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=3, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(factor=0.2, min_lr=1e-5),
        keras.callbacks.ModelCheckpoint("ignored.keras", save_best_only=True, mode="min", initial_value_threshold=0.5),
    ])
    assert [s.model_dump() for s in specs] == [
        {"type": "EarlyStopping", "monitor": "val_accuracy", "patience": 3, "mode": "max",
         "restore_best_weights": True},
        {"type": "ReduceLROnPlateau", "factor": 0.2, "min_lr": 1e-5},
        {"type": "ModelCheckpoint", "save_best_only": True, "mode": "min", "initial_value_threshold": 0.5}]


def test_a_sweep_with_a_bad_space_is_refused_before_any_request(client: Client, sent):
    with pytest.raises(ValidationError, match="0 < low < high"):
        client.sweeps.create({"dataset": "builtin:iris", "model": {"input_shape": [4], "layers": [{"type": "Dense"}]},
                              "compile": {"loss": "mse"}},
                             {"compile.optimizer.learning_rate": {"loguniform": [0, 1]}})
    assert sent == []
