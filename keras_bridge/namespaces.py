"""Every object a spec names is resolved in its own Keras namespace, and only there.

Keras resolves a serialized ``{"module": ..., "class_name": "function", "config": name}``
to *any* exported Keras function: given as an activation, ``keras.config.set_max_epochs``
is then called on a symbolic tensor while the model is traced, and every later ``fit``
in that process fails. So before Keras sees a value, each slot is checked against
its kind: an activation is a function of ``keras.activations``, an initializer a class
of ``keras.initializers``, and so on; a serialized object anywhere else is refused.
The same rule walks the ``{"keras": ...}`` model form before it is deserialized.
"""

import inspect
from typing import Any

import keras

from keras_bridge.catalog import ABSTRACT, REFUSED_LAYERS, did_you_mean, public_classes
from keras_bridge.errors import Loc, SpecError, SpecIssue
from keras_bridge.limits import Budgets, check_value

_NOT_OBJECTS = ("get", "serialize", "deserialize")

ACTIVATIONS = frozenset(
    name for name in dir(keras.activations)
    if not name.startswith("_") and name not in _NOT_OBJECTS and inspect.isfunction(getattr(keras.activations, name))
)
LAYERS = public_classes(keras.layers, keras.layers.Layer)
MODELS = {("keras", "Functional"), ("keras", "Sequential"), ("keras", "Model"),
          ("keras.src.models.functional", "Functional"), ("keras.src.models.sequential", "Sequential"),
          ("keras.src.models.model", "Model")}
DTYPE_POLICIES = {("keras", "DTypePolicy"), ("keras", "FloatDTypePolicy"),
                  ("keras.dtype_policies", "DTypePolicy"), ("keras.dtype_policies", "FloatDTypePolicy")}
# Kinds of nested objects, by the suffix of the argument that holds them.
NESTED_KINDS = {"initializer": keras.initializers, "regularizer": keras.regularizers, "constraint": keras.constraints}
# Arguments that hold a layer (wrappers, RNN cells) and, in a model config, lists of them.
LAYER_SLOTS = ("layer", "backward_layer", "forward_layer", "cell", "layers", "cells")
# Markers Keras writes into a config for tensors and structures; nothing else starts with "__".
STRUCTURE_MARKERS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__slice__", "__ellipsis__"})


NESTED_CLASSES = {kind: public_classes(module, object) for kind, module in NESTED_KINDS.items()}


def slot_of(argument: str) -> str | None:
    """The kind of object an argument holds: ``recurrent_activation`` → activation, ..."""
    if argument.endswith("activation"):
        return "activation"
    for suffix in NESTED_KINDS:
        if argument.endswith(suffix):
            return suffix
    if argument == "dtype":
        return "dtype"
    if argument in LAYER_SLOTS:
        return "layer"
    return None


def is_serialized(value: Any) -> bool:
    return isinstance(value, dict) and ("class_name" in value or "module" in value)


def _refuse(loc: Loc, message: str) -> SpecError:
    return SpecError([SpecIssue(loc, message)])


def check_activation(value: Any, loc: Loc) -> None:
    """An activation: a name among ``keras.activations``, or its serialized form."""
    if isinstance(value, str):
        name = value
    elif is_serialized(value):
        name = value.get("config")
        if (value.get("module") != "keras.activations" or value.get("class_name") != "function"
                or value.get("registered_name") not in (None, name)
                or set(value) - {"module", "class_name", "config", "registered_name"}):
            raise _refuse(loc, "an activation must be a function of keras.activations, by name (\"relu\") or as "
                               "{\"module\": \"keras.activations\", \"class_name\": \"function\", "
                               "\"config\": \"relu\"}. "
                               f"Received: module={value.get('module')!r}, class_name={value.get('class_name')!r}.")
    else:
        raise _refuse(loc, f"an activation must be the name of a function of keras.activations. Received: {value!r}.")
    if name not in ACTIVATIONS:
        raise _refuse(loc, f"unknown activation {name!r}: activations are the functions of keras.activations."
                           f"{did_you_mean(str(name), ACTIVATIONS)}")


def check_no_serialized(value: Any, loc: Loc) -> None:
    """A free-form argument value: plain data, no serialized Keras object anywhere in it."""
    stack = [(value, loc)]
    while stack:
        item, at = stack.pop()
        if is_serialized(item):
            raise _refuse(at, "serialized Keras objects are only accepted where Keras expects that kind of object "
                              "(activations, initializers, regularizers, constraints, layers).")
        if isinstance(item, dict):
            stack.extend((v, (*at, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, (*at, i)) for i, v in enumerate(item))


def _allowed(slot: str | None, module: Any, class_name: Any) -> bool:
    if slot == "model":
        return (module, class_name) in MODELS
    if slot == "layer":
        return (module, class_name) in MODELS or (
            module == "keras.layers" and class_name in LAYERS
            and class_name not in ABSTRACT | REFUSED_LAYERS - {"InputLayer"})
    if slot == "dtype":
        return (module, class_name) in DTYPE_POLICIES
    if slot in NESTED_KINDS:
        return module == f"keras.{slot}s" and class_name in NESTED_CLASSES[slot] and class_name not in ABSTRACT
    return False


def _check_serialized_object(obj: dict[str, Any], slot: str | None, loc: Loc) -> None:
    class_name, module = obj.get("class_name"), obj.get("module")
    if class_name in STRUCTURE_MARKERS and slot is None:
        return
    if slot == "activation":
        check_activation(obj, loc)
        return
    if class_name == "function":
        raise _refuse(loc, f"a function is only accepted as an activation (from keras.activations). Received: "
                           f"module={module!r}, config={obj.get('config')!r}.")
    if obj.get("registered_name") not in (None, class_name):
        raise _refuse(loc, f"registered (custom) objects are not available on the service. Received: "
                           f"registered_name={obj.get('registered_name')!r}.")
    if slot == "layer" and class_name in REFUSED_LAYERS - {"InputLayer"}:
        raise _refuse(loc,
                      f"layer '{class_name}' is not allowed on the service: it runs code or reads or writes files.")
    if not _allowed(slot, module, class_name):
        expected = {"model": "a Functional or Sequential model", "layer": "a layer of keras.layers",
                    "dtype": "a DTypePolicy", None: "no Keras object here"}.get(slot, f"a class of keras.{slot}s")
        raise _refuse(loc, f"expected {expected}. Received: module={module!r}, class_name={class_name!r}.")


# A model config nests objects in objects; deeper than this is no model anyone saved.
MAX_CONFIG_DEPTH = 64


def _holds_dict(value: list[Any]) -> bool:
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            return True
        if isinstance(item, list):
            stack.extend(item)
    return False


def check_keras_config(config: Any, loc: Loc, budgets: Budgets) -> int:
    """Walk a ``model.to_json()`` dict before Keras deserializes it; returns the number of layers.

    Each serialized object must come from the namespace of the slot it sits in (the
    argument's name says which); plain data (lists of numbers, strings) must fit the
    argument budgets. Shared objects are refused: one could stand in a slot of another
    kind. ``compile_config`` is not looked at: ``without_compile_config`` drops it.
    """
    layers = 0
    stack: list[tuple[Any, str | None, Loc]] = [(config, "model", loc)]
    while stack:
        item, slot, at = stack.pop()
        if len(at) - len(loc) > MAX_CONFIG_DEPTH:
            raise _refuse(at, f"the model config may be nested at most {MAX_CONFIG_DEPTH} levels deep.")
        if isinstance(item, list):
            if _holds_dict(item):
                stack.extend((v, slot, (*at, i)) for i, v in enumerate(item))
            else:
                check_value(item, at, budgets)
            continue
        if isinstance(item, str):
            check_value(item, at, budgets)
            if slot == "activation":
                check_activation(item, at)
            continue
        if not isinstance(item, dict):
            continue
        if not is_serialized(item):
            if slot is not None:
                raise _refuse(at, "expected a serialized Keras object (with module and class_name).")
            stack.extend((v, slot_of(k), (*at, k)) for k, v in item.items())
            continue
        _check_serialized_object(item, slot, at)
        if item.get("shared_object_id") is not None:
            raise _refuse((*at, "shared_object_id"),
                          "shared objects are not accepted: give each object where it is used.")
        layers += slot == "layer"
        inner = item.get("config")
        if isinstance(inner, dict) and item.get("class_name") not in STRUCTURE_MARKERS:
            stack.extend((v, slot_of(k), (*at, "config", k)) for k, v in inner.items())
        else:
            stack.append((inner, None, (*at, "config")))
        stack.extend((v, None, (*at, k)) for k, v in item.items()
                     if k not in ("config", "class_name", "module", "registered_name", "compile_config"))
    return layers


def without_compile_config(config: Any) -> Any:
    """A copy of a model config without ``compile_config`` (what ``to_json()`` writes for a
    compiled model): the job's "compile" part compiles, and Keras would otherwise
    deserialize the optimizer, loss and metrics named there."""
    if isinstance(config, dict):
        return {k: without_compile_config(v) for k, v in config.items() if k != "compile_config"}
    if isinstance(config, list):
        return [without_compile_config(v) for v in config]
    return config
