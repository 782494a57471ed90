"""Spec layers → Keras layers, and the model built from them."""

from typing import Any

import keras

from keras_bridge.catalog import ABSTRACT, REFUSED_LAYERS, abstract_error, check_arguments, did_you_mean, resolve_class
from keras_bridge.errors import Loc, SpecError, SpecIssue, keras_message
from keras_bridge.limits import Budgets
from keras_bridge.namespaces import (
    LAYERS,
    NESTED_CLASSES,
    NESTED_KINDS,
    check_activation,
    check_keras_config,
    check_no_serialized,
    slot_of,
    without_compile_config,
)
from models.spec import KerasJsonModel, KerasObject, LayersModel

# Arguments that hold another layer, for wrappers such as Bidirectional.
LAYER_ARGS = ("layer", "backward_layer")


def _nested_object(kind: str, value: Any, loc: Loc) -> Any:
    """An initializer, regularizer or constraint: a name or ``{"type": ..., args}``, from its own module."""
    if isinstance(value, dict):
        check_no_serialized(value, loc)
        obj = KerasObject.model_validate(value)
        cls = resolve_class(obj.type, NESTED_CLASSES[kind], loc=(*loc, "type"), what=kind)
        check_arguments(cls, obj.args, loc=loc, what=kind)
        try:
            return cls(**obj.args)
        except Exception as exc:
            raise SpecError([SpecIssue(loc, keras_message(exc))]) from exc
    if not isinstance(value, str):
        raise SpecError([SpecIssue(loc, f"expected the name of a {kind} or an object like {{\"type\": ..., ...}}.")])
    try:
        obj = NESTED_KINDS[kind].get(value)
    except Exception as exc:
        hint = did_you_mean(value, (n for n in NESTED_CLASSES[kind] if n not in ABSTRACT))
        raise SpecError([SpecIssue(loc, f"unknown {kind} '{value}'.{hint}")]) from exc
    if type(obj).__name__ in ABSTRACT:
        raise abstract_error(value, loc=loc, what=kind)
    return value


def _resolve_arguments(args: dict[str, Any], loc: Loc) -> dict[str, Any]:
    """Each argument resolved in the namespace of its kind (the argument's name says which)."""
    resolved = {}
    for name, value in args.items():
        arg_loc = (*loc, name)
        slot = slot_of(name)
        if value is None:
            resolved[name] = value
        elif name in LAYER_ARGS:
            if not isinstance(value, dict) or "type" not in value:
                raise SpecError([SpecIssue(arg_loc,
                                           "expected a layer object like {\"type\": \"LSTM\", \"units\": 16}.")])
            resolved[name] = make_layer(KerasObject.model_validate(value), arg_loc)
        elif slot == "activation":
            check_activation(value, arg_loc)
            resolved[name] = value
        elif slot in NESTED_KINDS:
            resolved[name] = _nested_object(slot, value, arg_loc)
        else:
            check_no_serialized(value, arg_loc)
            resolved[name] = value
    return resolved


def make_layer(spec: KerasObject, loc: Loc) -> keras.layers.Layer:
    cls = resolve_class(spec.type, LAYERS, loc=(*loc, "type"), what="layer", refused=REFUSED_LAYERS)
    args = spec.args
    if "input_shape" in args:
        raise SpecError([SpecIssue((*loc, "input_shape"), "give the input shape once, as model.input_shape.")])
    check_arguments(cls, args, loc=loc, what="layer")
    resolved = _resolve_arguments(args, loc)
    try:
        return cls(**resolved)
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError([SpecIssue(loc, keras_message(exc))]) from exc


def build_layers_model(spec: LayersModel, *, name: str = "trainyard") -> keras.Model:
    """Construct every layer (reporting all bad ones), then apply them one by one
    so that a shape error names the layer that caused it."""
    layers, issues = [], []
    for index, layer_spec in enumerate(spec.layers):
        try:
            layers.append(make_layer(layer_spec, ("model", "layers", index)))
        except SpecError as exc:
            issues.extend(exc.issues)
    if issues:
        raise SpecError(issues)
    inputs = keras.Input(shape=tuple(spec.input_shape), name="x")
    tensor = inputs
    for index, layer in enumerate(layers):
        try:
            tensor = layer(tensor)
        except Exception as exc:
            message = (f"{spec.layers[index].type} cannot take an input of shape {tuple(tensor.shape)}: "
                       f"{keras_message(exc)}")
            raise SpecError([SpecIssue(("model", "layers", index), message)]) from exc
    return keras.Model(inputs, tensor, name=name)


def load_json_model(spec: KerasJsonModel, budgets: Budgets) -> keras.Model:
    from keras.src.saving import serialization_lib

    loc: Loc = ("model", "keras")
    check_keras_config(spec.keras, loc, budgets)  # before Keras resolves anything in it
    try:
        model = serialization_lib.deserialize_keras_object(without_compile_config(spec.keras), safe_mode=True)
    except Exception as exc:
        raise SpecError([SpecIssue(loc, f"Keras could not load this model: {keras_message(exc)}")]) from exc
    if not isinstance(model, keras.Model):
        raise SpecError([SpecIssue(loc, "expected the dict of a Keras model's to_json().")])
    return model


def build_model(spec: LayersModel | KerasJsonModel, budgets: Budgets | None = None) -> keras.Model:
    """The model, weights and all. ``keras_bridge.budget.build_within_budget`` builds it
    from shapes first and checks what it will cost; use that for anything from a tenant."""
    if isinstance(spec, KerasJsonModel):
        return load_json_model(spec, budgets or Budgets())
    return build_layers_model(spec)
