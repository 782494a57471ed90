"""Small job specs that train in seconds on the built-in data."""

import copy
from typing import Any

DIGITS_CNN: dict[str, Any] = {
    "name": "digits-cnn",
    "dataset": "builtin:digits",
    "data": {"validation_split": 0.2, "test_split": 0.1, "scale_x": "rescale"},
    "model": {
        "input_shape": [8, 8, 1],
        "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu", "padding": "same"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01},
                "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 3, "batch_size": 64},
    "seed": 7,
}

IRIS_MLP: dict[str, Any] = {
    "name": "iris-mlp",
    "dataset": "builtin:iris",
    "data": {"validation_split": 0.2, "scale_x": "standardize", "one_hot": True},
    "model": {"input_shape": [4], "layers": [
        {"type": "Dense", "units": 16, "activation": "relu"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ]},
    "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 3, "batch_size": 16},
    "seed": 1,
}


def spec(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with top-level keys replaced, or merged for the
    option groups (data, compile, fit); ``model`` is always replaced whole."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if key != "model" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out
