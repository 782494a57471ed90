"""Spec layers → Keras layers, and the model built from them."""

from typing import Any

import keras

from keras_bridge.catalog import (
    NESTED_KINDS,
    REFUSED_LAYERS,
    check_arguments,
    public_classes,
    resolve_class,
)
from keras_bridge.errors import Loc, SpecError, SpecIssue, keras_message
from models.spec import KerasJsonModel, KerasObject, LayersModel

LAYER_CLASSES = public_classes(keras.layers, keras.layers.Layer)
# Arguments that hold another layer, for wrappers such as Bidirectional.
LAYER_ARGS = ("layer", "backward_layer")


def _nested_object(kind: str, value: Any, loc: Loc) -> Any:
    module = getattr(keras, kind)
    if isinstance(value, dict):
        obj = KerasObject.model_validate(value)
        classes = public_classes(module, object)
        cls = resolve_class(obj.type, classes, loc=(*loc, "type"), what=kind[:-1])
        check_arguments(cls, obj.args, loc=loc, what=kind[:-1])
        try:
            return cls(**obj.args)
        except Exception as exc:
            raise SpecError([SpecIssue(loc, keras_message(exc))]) from exc
    try:
        module.get(value)
    except Exception as exc:
        raise SpecError([SpecIssue(loc, keras_message(exc))]) from exc
    return value


def _resolve_arguments(args: dict[str, Any], loc: Loc) -> dict[str, Any]:
    resolved = {}
    for name, value in args.items():
        arg_loc = (*loc, name)
        if name in LAYER_ARGS and value is not None:
            if not isinstance(value, dict):
                raise SpecError([SpecIssue(arg_loc, "expected a layer object like {\"type\": \"LSTM\", \"units\": 16}.")])
            resolved[name] = make_layer(KerasObject.model_validate(value), arg_loc)
        elif name == "activation" and value is not None:
            try:
                keras.activations.get(value)
            except Exception as exc:
                raise SpecError([SpecIssue(arg_loc, keras_message(exc))]) from exc
            resolved[name] = value
        elif value is not None and (kind := next((k for s, k in NESTED_KINDS.items() if name.endswith(s)), None)):
            resolved[name] = _nested_object(kind, value, arg_loc)
        else:
            resolved[name] = value
    return resolved


def make_layer(spec: KerasObject, loc: Loc) -> keras.layers.Layer:
    cls = resolve_class(spec.type, LAYER_CLASSES, loc=(*loc, "type"), what="layer", refused=REFUSED_LAYERS)
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
            message = f"{spec.layers[index].type} cannot take an input of shape {tuple(tensor.shape)}: {keras_message(exc)}"
            raise SpecError([SpecIssue(("model", "layers", index), message)]) from exc
    return keras.Model(inputs, tensor, name=name)


def _class_names(config: Any) -> set[str]:
    if isinstance(config, dict):
        names = {config["class_name"]} if isinstance(config.get("class_name"), str) else set()
        for value in config.values():
            names |= _class_names(value)
        return names
    if isinstance(config, list):
        return set().union(*(_class_names(v) for v in config)) if config else set()
    return set()


def load_json_model(spec: KerasJsonModel) -> keras.Model:
    from keras.src.saving import serialization_lib

    loc: Loc = ("model", "keras")
    refused = sorted(_class_names(spec.keras) & REFUSED_LAYERS - {"InputLayer"})
    if refused:
        raise SpecError([SpecIssue(loc, f"layers {refused} are not allowed: they run code or read files.")])
    try:
        model = serialization_lib.deserialize_keras_object(spec.keras, safe_mode=True)
    except Exception as exc:
        raise SpecError([SpecIssue(loc, f"Keras could not load this model: {keras_message(exc)}")]) from exc
    if not isinstance(model, keras.Model):
        raise SpecError([SpecIssue(loc, "expected the dict of a Keras model's to_json().")])
    return model


def build_model(spec: LayersModel | KerasJsonModel) -> keras.Model:
    if isinstance(spec, KerasJsonModel):
        return load_json_model(spec)
    return build_layers_model(spec)
