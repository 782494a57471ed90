"""Every object a spec names resolves in its own Keras namespace only (issue 8, item 3).

Keras itself resolves a serialized function from any exported module: given as an
activation, ``keras.config.set_max_epochs`` poisoned every later fit of the worker.
Each kind of slot gets the hostile functions, in the layers form and the {"keras"} form.
"""

import copy
import json

import keras
import pytest

from keras_bridge.errors import SpecError
from keras_bridge.validate import check_spec
from models.spec import JobSpec
from tests.specs import IRIS_MLP, spec

HOSTILE = [
    ("keras.config", "set_max_epochs"), ("keras.config", "set_epsilon"), ("keras.config", "set_max_steps_per_epoch"),
    ("keras.config", "set_floatx"), ("keras.config", "enable_unsafe_deserialization"),
    ("keras.utils", "set_random_seed"),
    ("keras.utils", "clear_session"), ("builtins", "eval"), ("os", "system"), ("subprocess", "run"),
]
IDS = [f"{m}.{f}" for m, f in HOSTILE]


def fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": None}


def issues(body: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(SpecError) as caught:
        check_spec(JobSpec.model_validate(body))
    return [(i.loc, i.message) for i in caught.value.issues]


def layers(*specs: dict, input_shape=(4,)) -> dict:
    return {"input_shape": list(input_shape),
            "layers": [*specs, {"type": "Dense", "units": 3, "activation": "softmax"}]}


@pytest.fixture(autouse=True)
def global_config_is_untouched():
    before = (keras.config.max_epochs(), keras.config.max_steps_per_epoch(), keras.config.epsilon(),
              keras.config.floatx())
    yield
    assert (keras.config.max_epochs(), keras.config.max_steps_per_epoch(), keras.config.epsilon(),
            keras.config.floatx()) == before


def test_keras_itself_resolves_a_serialized_function_from_any_module():
    # The hazard these tests guard against: if Keras stops doing this, the rule is still right.
    assert keras.activations.get(fn("keras.config", "set_max_epochs")) is keras.config.set_max_epochs


@pytest.mark.parametrize(("module", "name"), HOSTILE, ids=IDS)
@pytest.mark.parametrize(("layer", "where"), [
    ({"type": "Dense", "units": 4}, "activation"),
    ({"type": "LSTM", "units": 4}, "recurrent_activation"),
    ({"type": "Dense", "units": 4}, "kernel_initializer"),
    ({"type": "Dense", "units": 4}, "kernel_regularizer"),
    ({"type": "Dense", "units": 4}, "bias_constraint"),
    ({"type": "Dense", "units": 4}, "dtype"),
    ({"type": "Dense"}, "units"),
], ids=["activation", "recurrent_activation", "initializer", "regularizer", "constraint", "dtype", "plain-argument"])
def test_layers_form_refuses_a_function_from_another_module_in_every_slot(module, name, layer, where):
    input_shape = (3, 4) if layer["type"] == "LSTM" else (4,)
    body = spec(IRIS_MLP, model=layers({**layer, where: fn(module, name)}, input_shape=input_shape))
    found = issues(body)
    assert found[0][0] == ("model", "layers", 0, where), found


def test_an_activation_inside_a_wrapped_layer_is_checked_too():
    body = spec(IRIS_MLP, model=layers(
        {"type": "Bidirectional",
         "layer": {"type": "LSTM", "units": 2, "activation": fn("keras.config", "set_epsilon")}},
        input_shape=(3, 4)))
    assert issues(body)[0][0] == ("model", "layers", 0, "layer", "activation")


@pytest.mark.parametrize(("part", "where"), [
    ({"optimizer": {"type": "Adam", "learning_rate": fn("keras.config", "set_max_epochs")}},
     ("compile", "optimizer", "learning_rate")),
    ({"loss": {"type": "Huber", "delta": fn("keras.config", "set_epsilon")}}, ("compile", "loss", "delta")),
    ({"metrics": [{"type": "AUC", "num_thresholds": fn("os", "system")}]}, ("compile", "metrics", 0, "num_thresholds")),
], ids=["optimizer", "loss", "metric"])
def test_compile_parts_refuse_serialized_objects_in_their_arguments(part, where):
    assert where in [loc for loc, _ in issues(spec(IRIS_MLP, compile=part))]


def test_callback_arguments_refuse_serialized_objects():
    body = spec(IRIS_MLP,
                fit={"callbacks": [{"type": "EarlyStopping", "monitor": fn("keras.config", "set_max_epochs")}]})
    assert ("fit", "callbacks", 0, "monitor") in [loc for loc, _ in issues(body)]


@pytest.mark.parametrize(("body", "where"), [
    (spec(IRIS_MLP, compile={"optimizer": {"type": "Optimizer", "learning_rate": 0.1}}),
     ("compile", "optimizer", "type")),
    (spec(IRIS_MLP, compile={"loss": {"type": "Loss"}}), ("compile", "loss", "type")),
    (spec(IRIS_MLP, compile={"metrics": [{"type": "Metric"}]}), ("compile", "metrics", 0, "type")),
    (spec(IRIS_MLP, compile={"metrics": [{"type": "MeanMetricWrapper", "fn": "mse"}]}),
     ("compile", "metrics", 0, "type")),
    (spec(IRIS_MLP, model=layers({"type": "Layer"})), ("model", "layers", 0, "type")),
    (spec(IRIS_MLP, model=layers({"type": "Dense", "units": 2, "kernel_initializer": {"type": "Initializer"}})),
     ("model", "layers", 0, "kernel_initializer", "type")),
    (spec(IRIS_MLP, model=layers({"type": "Dense", "units": 2, "kernel_regularizer": {"type": "Regularizer"}})),
     ("model", "layers", 0, "kernel_regularizer", "type")),
    (spec(IRIS_MLP, model=layers({"type": "Dense", "units": 2, "kernel_constraint": {"type": "Constraint"}})),
     ("model", "layers", 0, "kernel_constraint", "type")),
    (spec(IRIS_MLP, compile={"optimizer": "Optimizer"}), ("compile", "optimizer")),
    (spec(IRIS_MLP, compile={"loss": "Loss"}), ("compile", "loss")),
    (spec(IRIS_MLP, compile={"metrics": ["MeanMetricWrapper"]}), ("compile", "metrics", 0)),
    (spec(IRIS_MLP, model=layers({"type": "Dense", "units": 2, "kernel_initializer": "Initializer"})),
     ("model", "layers", 0, "kernel_initializer")),
], ids=["Optimizer", "Loss", "Metric", "MeanMetricWrapper", "Layer", "Initializer", "Regularizer", "Constraint",
        "by-name-Optimizer", "by-name-Loss", "by-name-MeanMetricWrapper", "by-name-Initializer"])
def test_base_classes_and_function_wrappers_are_refused(body, where):
    found = issues(body)
    assert found[0][0] == where and "base class" in found[0][1], found


def test_names_and_serialized_activations_of_keras_activations_still_work():
    body = spec(IRIS_MLP, model=layers(
        {"type": "Dense", "units": 4, "activation": fn("keras.activations", "relu")},
        {"type": "Dense", "units": 4, "activation": "tanh", "kernel_initializer": {"type": "HeNormal", "seed": 1},
         "kernel_regularizer": "l2", "kernel_constraint": {"type": "MaxNorm", "max_value": 2}}))
    assert check_spec(JobSpec.model_validate(body))["params"] == 4 * 4 + 4 + 4 * 4 + 4 + 4 * 3 + 3


# The {"keras": to_json()} form: the same rule, walked before Keras deserializes anything.

def functional_config() -> dict:
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(4, activation="relu", kernel_regularizer="l2",
                                kernel_constraint=keras.constraints.MaxNorm(2), name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    return json.loads(keras.Model(inputs, outputs).to_json())


def keras_issues(config: dict) -> list[tuple[tuple, str]]:
    return issues(spec(IRIS_MLP, model={"keras": config}))


def test_the_unchanged_keras_form_is_accepted():
    assert check_spec(JobSpec.model_validate(spec(IRIS_MLP, model={"keras": functional_config()})))["params"] == 35


@pytest.mark.parametrize(("module", "name"), HOSTILE, ids=IDS)
@pytest.mark.parametrize("slot", ["activation", "kernel_initializer", "kernel_regularizer", "kernel_constraint",
                                  "dtype"])
def test_keras_form_refuses_a_function_from_another_module_in_every_slot(module, name, slot):
    config = functional_config()
    config["config"]["layers"][1]["config"][slot] = fn(module, name)
    found = keras_issues(config)
    assert found[0][0] == ("model", "keras", "config", "layers", 1, "config", slot), found


@pytest.mark.parametrize(("module", "class_name"), [
    ("keras.config", "set_max_epochs"), ("keras.layers", "Lambda"), ("keras.layers", "TFSMLayer"),
    ("keras.optimizers", "Adam"), ("keras.src.layers.core.lambda_layer", "Lambda"), ("os", "system"),
])
def test_keras_form_refuses_what_is_not_a_layer_in_a_layer_slot(module, class_name):
    config = functional_config()
    config["config"]["layers"][1].update(module=module, class_name=class_name)
    assert keras_issues(config)[0][0] == ("model", "keras", "config", "layers", 1)


@pytest.mark.parametrize("change", [
    lambda c: c.update(module="keras.config", class_name="set_max_epochs", registered_name=None),
    lambda c: c.update(module="keras.layers", class_name="Dense", registered_name=None),
    lambda c: c["config"]["layers"][1]["inbound_nodes"][0]["args"].append(fn("keras.config", "set_max_epochs")),
    lambda c: c["config"]["layers"][1]["inbound_nodes"][0]["args"].append(
        {"class_name": "__lambda__", "config": {"value": "x"}, "module": None, "registered_name": None}),
    lambda c: c["config"]["layers"][1]["inbound_nodes"][0]["args"].append(
        {"class_name": "__typespec__", "spec_name": "system", "module": "os", "config": [], "registered_name": None}),
    lambda c: c["config"]["layers"][1].update(registered_name="my_package>Dense"),
    lambda c: c["config"]["layers"][1]["config"]["kernel_regularizer"].update(shared_object_id=1),
    lambda c: c["config"]["layers"][1]["config"].update(
        kernel_initializer={"class_name": "Initializer", "module": "keras.initializers", "config": {}}),
], ids=["model-class", "model-as-layer", "function-in-call-args", "lambda", "typespec", "registered-name",
        "shared-object", "abstract-initializer"])
def test_keras_form_refuses_other_routes(change):
    config = functional_config()
    change(config)
    found = keras_issues(config)
    assert found, "not refused"
    assert not any("Keras could not load" in message for _, message in found), found  # refused by the walk


def test_keras_form_compile_config_is_dropped_not_deserialized():
    config = functional_config()
    config["compile_config"] = {"optimizer": fn("keras.config", "set_max_epochs"), "loss": "mse"}
    check_spec(JobSpec.model_validate(spec(IRIS_MLP, model={"keras": copy.deepcopy(config)})))
