"""A compiled ``keras.Model`` and its ``fit`` callbacks → the parts of a v1 job spec.

Only what the spec can say is sent, and what it cannot say is refused here, before
anything is uploaded: a silently different model on the server would be worse than
an error. Each Keras object becomes ``{"type": <class name>, <arguments that differ
from the class's defaults>}``, the form the server resolves in safe mode; arguments
left at their defaults are left out so that the spec stays readable (and retry
patches apply to it as to a hand-written one).
"""

import inspect
import json
import math
from typing import Any

import keras

from keras_bridge.training import CALLBACKS
from models.spec import CompileSpec, KerasJsonModel, KerasObject, LayersModel

# Layer config keys that are not constructor choices of the user (or that the server owns).
NOT_ARGUMENTS = frozenset({"name", "trainable", "dtype", "quantization_config"})


# Where the class of a nested object (an initializer, a regularizer, a loss, ...) is found by its name.
NESTED_MODULES = (keras.initializers, keras.regularizers, keras.constraints, keras.losses, keras.metrics,
                  keras.layers, keras.optimizers.schedules)


class Unsupported(ValueError):
    """What the service cannot do as asked: the message says what and what to do instead."""


def _defaults(cls: type) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _plain(value: Any, where: str, *, float_digits: int | None = None) -> Any:
    """A JSON value of the spec: serialized Keras objects become ``{"type": ...}``; tuples lists."""
    if isinstance(value, dict) and "class_name" in value:
        return _object(value, where)
    if isinstance(value, list | tuple):
        return [_plain(v, where, float_digits=float_digits) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}", float_digits=float_digits) for k, v in value.items()}
    if isinstance(value, float) and float_digits is not None:
        return float(f"{value:.{float_digits}g}")  # a float32 learning rate 0.00999999977 is the user's 0.01
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise Unsupported(f"{where}: a {type(value).__name__} cannot be sent to the service")


def _object(serialized: dict[str, Any], where: str) -> dict[str, Any]:
    """``{"module", "class_name", "config"}`` (Keras's serialization) → ``{"type": ..., args}``."""
    if serialized.get("registered_name") not in (None, serialized["class_name"]):
        raise Unsupported(f"{where}: the custom object {serialized['registered_name']!r} cannot run on the service "
                          "(it resolves Keras's own names only); use a built-in one")
    name, config = serialized["class_name"], serialized.get("config") or {}
    for module in NESTED_MODULES:
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            return {"type": name, **_arguments(cls, config, where)}
    raise Unsupported(f"{where}: {name} is not one of Keras's own objects, which the service resolves by name")


def _arguments(cls: type, config: dict[str, Any], where: str, *, float_digits: int | None = None) -> dict[str, Any]:
    defaults = _defaults(cls)
    args = {}
    for name, value in config.items():
        if name in NOT_ARGUMENTS or name not in inspect.signature(cls.__init__).parameters:
            continue
        if name in defaults and _same(value, defaults[name]):
            continue
        args[name] = _plain(value, f"{where}.{name}", float_digits=float_digits)
    return args


def _same(value: Any, default: Any) -> bool:
    """Whether a config value is the constructor's default, also when Keras serialized a default name."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(default, tuple):
        default = list(default)
    if value == default:
        return True
    if isinstance(value, dict) and "class_name" in value and isinstance(default, str):
        return _default_named(value, default)
    return False


def _default_named(serialized: dict[str, Any], name: str) -> bool:
    """``{"class_name": "GlorotUniform", "config": {seed: None}}`` is the default ``"glorot_uniform"``."""
    for module in (keras.initializers, keras.regularizers, keras.constraints):
        try:
            obj = module.get(name)
        except (ValueError, TypeError):
            continue
        return bool(type(obj).__name__ == serialized["class_name"] and obj.get_config() == serialized.get("config"))
    return False


def _layer(layer: keras.layers.Layer, index: int) -> KerasObject:
    cls = type(layer)
    where = f"model.layers[{index}] ({cls.__name__})"
    if getattr(keras.layers, cls.__name__, None) is not cls:
        raise Unsupported(f"{where}: only Keras's own layers can run on the service (safe mode); "
                          f"{cls.__module__}.{cls.__name__} is not one")
    config = layer.get_config()
    # Left out of the spec (NOT_ARGUMENTS), so refused when they differ from what the service does.
    if config.get("trainable") is False:
        raise Unsupported(f"{where}: a frozen layer (trainable=False) cannot be sent; the service trains every layer")
    dtype = config.get("dtype")
    dtype_name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if dtype_name not in (None, "float32"):
        raise Unsupported(f"{where}: dtype {dtype_name!r}: the service trains in float32")
    return KerasObject.model_validate({"type": cls.__name__, **_arguments(cls, config, where)})


def model_spec(model: keras.Model) -> LayersModel | KerasJsonModel:
    """A Sequential model as ``model.layers`` (the readable form), any other graph as its ``to_json()``."""
    if not isinstance(model, keras.Model):
        raise Unsupported(f"expected a keras.Model. Received: {type(model).__name__}")
    if type(model) is not keras.Sequential and not _functional(model):
        # A subclass: its call() is Python code, which the service will not run.
        raise Unsupported(f"{type(model).__name__} is a subclassed model: its call() is Python code, which the "
                          "service does not run. Build it with keras.Sequential or the functional API")
    if not model.built or not getattr(model, "inputs", None):
        raise Unsupported("the model has no input shape: start it with keras.Input(shape=...) "
                          "(the service builds it from the spec before any data is seen)")
    if type(model) is keras.Sequential:
        if len(model.inputs) != 1:
            raise Unsupported("a Sequential model with several inputs cannot be sent")
        layers = [_layer(layer, i) for i, layer in enumerate(model.layers)]
        return LayersModel(input_shape=list(model.inputs[0].shape[1:]), layers=layers)
    for index, layer in enumerate(model.layers):
        if not isinstance(layer, keras.layers.InputLayer):
            _layer(layer, index)  # refuses custom layers with a message naming them
    return KerasJsonModel(keras=json.loads(model.to_json()))


def _functional(model: keras.Model) -> bool:
    """keras.Model(inputs, outputs) makes Keras's own Functional class (private: known by module and name)."""
    cls = type(model)
    return cls is keras.Model or (cls.__name__ == "Functional" and cls.__module__.startswith("keras."))


def compile_spec(model: keras.Model) -> CompileSpec:
    """What ``model.compile`` was given: the optimizer (its non-default settings), the loss, the metrics."""
    if not getattr(model, "compiled", False):
        raise Unsupported("compile the model first (model.compile(optimizer=..., loss=..., metrics=...)): "
                          "the service trains it as compiled")
    config = model.get_compile_config()
    for name in ("loss_weights", "weighted_metrics"):
        if config.get(name):
            raise Unsupported(f"compile: {name} cannot be sent to the service")
    if config.get("run_eagerly") or config.get("jit_compile") not in (False, None, "auto"):
        raise Unsupported("compile: run_eagerly and jit_compile are the service's to choose; leave them out")
    optimizer = config["optimizer"]
    if isinstance(optimizer, dict):
        cls = getattr(keras.optimizers, optimizer["class_name"], None)
        if cls is None:
            raise Unsupported(f"compile: the optimizer {optimizer['class_name']} is not one of Keras's")
        optimizer = {"type": optimizer["class_name"],
                     **_arguments(cls, optimizer["config"], "compile.optimizer", float_digits=7)}
    loss = _plain(config["loss"], "compile.loss")
    if not isinstance(loss, str | dict):
        raise Unsupported("compile: one loss (a name or a Keras loss object); several outputs' losses cannot be sent")
    metrics = _plain(config.get("metrics") or [], "compile.metrics")
    return CompileSpec.model_validate({"optimizer": optimizer, "loss": loss, "metrics": metrics})


def callback_specs(callbacks: list[Any]) -> list[KerasObject]:
    """Keras callbacks the service runs (keras_bridge.training.CALLBACKS), with their settings."""
    out = []
    for index, callback in enumerate(callbacks):
        cls = type(callback)
        if CALLBACKS.get(cls.__name__) is not cls:
            raise Unsupported(f"callbacks[{index}]: {cls.__name__} cannot run on the service; it runs "
                              f"{', '.join(sorted(CALLBACKS))} (a callback of your own is Python code it does not run)")
        # Callbacks have no get_config: their settings are the attributes named like the constructor's arguments.
        settings = {name: getattr(callback, name) for name in inspect.signature(cls.__init__).parameters
                    if name not in ("self", "filepath", "verbose") and hasattr(callback, name)}
        threshold = getattr(callback, "best", None)
        if cls.__name__ == "ModelCheckpoint" and threshold is not None and math.isfinite(threshold):
            settings["initial_value_threshold"] = threshold  # kept only as the starting best
        args = _arguments(cls, settings, f"callbacks[{index}]")
        out.append(KerasObject.model_validate({"type": cls.__name__, **args}))
    return out
