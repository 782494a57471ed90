"""A JSON model summary: the layers, their output shapes and parameter counts."""

import math
from typing import Any

import keras


def _shape(tensor: Any) -> list[int | None] | list[list[int | None]]:
    if isinstance(tensor, (list, tuple)):
        return [list(t.shape) for t in tensor]
    return list(tensor.shape)


def model_summary(model: keras.Model) -> dict[str, Any]:
    layers = []
    for layer in model.layers:
        try:
            output_shape = _shape(layer.output)
        except (AttributeError, ValueError):
            output_shape = None
        layers.append(
            {"name": layer.name, "type": type(layer).__name__, "output_shape": output_shape,
             "params": layer.count_params()}
        )
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)  # from shapes: weights may not exist yet
    total = model.count_params()
    return {
        "layers": layers,
        "input_shape": _shape(model.inputs if len(model.inputs) > 1 else model.inputs[0]),
        "output_shape": _shape(model.outputs if len(model.outputs) > 1 else model.outputs[0]),
        "params": total,
        "trainable_params": trainable,
    }
