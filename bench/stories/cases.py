"""The cases: each story's mistake as a job spec, what should be found, and healthy controls.

``expected`` lists the codes a correct diagnosis must report (preflight or
training); a healthy control expects none and must get no warning at all.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.stories import data


@dataclass
class Case:
    name: str
    story: str
    spec: dict[str, Any]
    expected: set[str] = field(default_factory=set)
    dataset: Callable[[], dict[str, np.ndarray]] | None = None  # None: spec["dataset"] is a built-in
    regression: bool = False
    slow: bool = False  # left out of the suite's fast part

    @property
    def healthy(self) -> bool:
        return not self.expected


def _spec(layers: list[dict], input_shape: list, loss: str, **parts: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"dataset": "generated", "model": {"input_shape": input_shape, "layers": layers},
                            "compile": {"optimizer": "adam", "loss": loss, "metrics": []},
                            "fit": {"epochs": 10, "batch_size": 32}, "seed": 42}
    for key, value in parts.items():
        spec[key] = {**spec.get(key, {}), **value}
    return spec


SIGNATURE = _spec(
    [{"type": "Conv1D", "filters": 64, "kernel_size": 3, "activation": "sigmoid"},
     {"type": "MaxPooling1D", "pool_size": 3},
     {"type": "Conv1D", "filters": 64, "kernel_size": 2, "activation": "sigmoid"},
     {"type": "Masking", "mask_value": 0.0},
     {"type": "LSTM", "units": 8},
     {"type": "Dense", "units": 2, "activation": "softmax"}],
    [None, 7], "categorical_crossentropy",
    data={"one_hot": True, "validation_split": 0.2, "test_split": 0.1},
    compile={"optimizer": {"type": "Adam", "learning_rate": 1e-4}, "metrics": ["accuracy"]},
    fit={"epochs": 12, "batch_size": 50},
)

POSITION = _spec(
    [{"type": "Conv1D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
     {"type": "Conv1D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
     {"type": "MaxPooling1D", "pool_size": 2},
     {"type": "Conv1D", "filters": 32, "kernel_size": 3, "activation": "relu", "padding": "same"},
     {"type": "MaxPooling1D", "pool_size": 2},
     {"type": "Flatten"},
     {"type": "Dense", "units": 64, "activation": "relu"},
     {"type": "Dense", "units": 32, "activation": "relu"},
     {"type": "Dense", "units": 1, "activation": "sigmoid"}],
    [64, 1], "mse",
    compile={"optimizer": {"type": "Nadam", "learning_rate": 1e-3}, "metrics": ["accuracy", "mse", "mae"]},
    fit={"epochs": 10, "batch_size": 7},
)

SIGNAL = _spec(
    [{"type": "Conv1D", "filters": 8, "kernel_size": 100, "padding": "same"},
     {"type": "LeakyReLU", "negative_slope": 0.1},
     {"type": "MaxPooling1D", "pool_size": 70, "strides": 1, "padding": "same"},
     {"type": "Conv1D", "filters": 16, "kernel_size": 70, "padding": "same"},
     {"type": "LeakyReLU", "negative_slope": 0.1},
     {"type": "MaxPooling1D", "pool_size": 40, "strides": 1, "padding": "same"},
     {"type": "Conv1D", "filters": 16, "kernel_size": 40, "padding": "same"},
     {"type": "LeakyReLU", "negative_slope": 0.1},
     {"type": "MaxPooling1D", "pool_size": 10, "strides": 1, "padding": "same"},
     {"type": "Flatten"},
     {"type": "Dense", "units": 1}],
    [1040, 1], "mse",
    compile={"optimizer": {"type": "Adam", "learning_rate": 1e-3}, "metrics": ["mae"]},
    fit={"epochs": 10, "batch_size": 1},
)

FACES_STUCK = _spec(
    [layer for _ in range(5) for layer in (
        {"type": "Conv2D", "filters": 64, "kernel_size": [2, 2], "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": [2, 2], "padding": "same"},
        {"type": "Dropout", "rate": 0.4})]
    + [{"type": "Flatten"}, {"type": "Dense", "units": 8, "activation": "softmax"}],
    [32, 32, 3], "sparse_categorical_crossentropy",
    data={"scale_x": "rescale"},
    compile={"optimizer": "adam", "metrics": ["accuracy"]},
    fit={"epochs": 12, "batch_size": 16},
)

FACES_OVERFIT = _spec(
    [{"type": "Conv2D", "filters": 16, "kernel_size": 5, "activation": "relu", "padding": "same"},
     {"type": "MaxPooling2D"},
     {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu", "padding": "same"},
     {"type": "MaxPooling2D"},
     {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu", "padding": "same"},
     {"type": "Flatten"},
     {"type": "Dense", "units": 256, "activation": "relu"},
     {"type": "Dense", "units": 8, "activation": "softmax"}],
    [32, 32, 3], "sparse_categorical_crossentropy",
    data={"scale_x": "rescale", "validation_split": 0.4},
    compile={"optimizer": "adam", "metrics": ["accuracy"]},
    fit={"epochs": 25, "batch_size": 16},
)

SCANS = _spec(
    [{"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
     {"type": "MaxPooling2D"},
     {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
     {"type": "MaxPooling2D"},
     {"type": "Flatten"},
     {"type": "Dense", "units": 64, "activation": "relu"},
     {"type": "Dense", "units": 2, "activation": "softmax"}],
    [32, 32, 1], "categorical_crossentropy",
    data={"one_hot": True},
    compile={"optimizer": {"type": "RMSprop", "learning_rate": 0.1}, "metrics": ["accuracy"]},
    fit={"epochs": 6, "batch_size": 32},
)


def _healthy(dataset: str, layers: list[dict], input_shape: list, loss: str, **parts: Any) -> dict[str, Any]:
    spec = _spec(layers, input_shape, loss, **parts)
    spec["dataset"] = dataset
    return spec


CASES = [
    Case("story1-signature", "1", SIGNATURE,
         {"saturating_activation", "masking_misplaced", "unscaled_inputs", "stuck_at_chance"}, data.signatures),
    Case("story2-position", "2", POSITION, {"output_shape_mismatch", "metric_not_meaningful"}, data.peaks_to_position,
         regression=True),
    Case("story3-signal", "3", SIGNAL, {"oversized_window", "tiny_batch", "unstable"}, data.long_signals,
         regression=True, slow=True),
    Case("story4-faces-stuck", "4", FACES_STUCK, {"stuck_at_chance"}, data.faces),
    Case("story4-faces-overfit", "4", FACES_OVERFIT, {"overfitting"},
         lambda: data.faces(n_per_class=40, noise=20.0, label_noise=0.4)),
    Case("story5-scans", "5", SCANS, {"learning_rate_extreme", "unscaled_inputs", "saturated_outputs"}, data.scans),
    Case("healthy-digits-cnn", "control", _healthy(
        "builtin:digits",
        [{"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
         {"type": "MaxPooling2D"}, {"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
        [8, 8, 1], "sparse_categorical_crossentropy", data={"scale_x": "rescale"},
        compile={"metrics": ["accuracy"]}, fit={"epochs": 8})),
    Case("healthy-iris-mlp", "control", _healthy(
        "builtin:iris",
        [{"type": "Dense", "units": 16, "activation": "relu"}, {"type": "Dense", "units": 3, "activation": "softmax"}],
        [4], "categorical_crossentropy", data={"scale_x": "standardize", "one_hot": True},
        compile={"optimizer": {"type": "Adam", "learning_rate": 0.01}, "metrics": ["accuracy"]},
        fit={"epochs": 15, "batch_size": 16})),
    Case("healthy-breast-cancer", "control", _healthy(
        "builtin:breast_cancer",
        [{"type": "Dense", "units": 32, "activation": "relu"}, {"type": "Dense", "units": 1, "activation": "sigmoid"}],
        [30], "binary_crossentropy", data={"scale_x": "standardize"},
        compile={"metrics": ["accuracy"]},
        fit={"epochs": 20, "callbacks": [
            {"type": "EarlyStopping", "monitor": "val_loss", "patience": 3, "restore_best_weights": True}]})),
    Case("healthy-diabetes-regression", "control", _healthy(
        "builtin:diabetes", [{"type": "Dense", "units": 32, "activation": "relu"}, {"type": "Dense", "units": 1}],
        [10], "mse", data={"scale_x": "standardize", "scale_y": "standardize"},
        compile={"optimizer": {"type": "Adam", "learning_rate": 0.003}, "metrics": ["mae"]},
        fit={"epochs": 30, "callbacks": [
            {"type": "EarlyStopping", "monitor": "val_loss", "patience": 4, "restore_best_weights": True}]}),
        regression=True),
    Case("healthy-wine-mlp", "control", _healthy(
        "builtin:wine",
        [{"type": "Dense", "units": 16, "activation": "relu"}, {"type": "Dense", "units": 3, "activation": "softmax"}],
        [13], "sparse_categorical_crossentropy", data={"scale_x": "standardize"},
        compile={"optimizer": {"type": "Adam", "learning_rate": 0.01}, "metrics": ["accuracy"]},
        fit={"epochs": 15, "batch_size": 16})),
]
