"""The calibration case table: healthy runs over many data sets and architectures,
times several seeds, and buggy variants with each training-phase code.

A buggy case names the codes it must raise (``expected``), the codes that are
acceptable side effects of its bug (``acceptable``: not counted as false alarms),
and how to find its onset epoch from its own curve (``onset``, see onset.py).
A healthy case expects nothing and accepts nothing: any warning on it is wrong.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from bench.calibration import data
from bench.calibration.onset import Onset
from bench.stories.cases import Case
from datastore.builtin import load_builtin

SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class CalibrationCase:
    case: Case  # what LocalRunner runs (name, spec, dataset, regression)
    group: str  # the data set and architecture: seeds of one group share it
    seed: int
    expected: frozenset[str] = frozenset()
    acceptable: frozenset[str] = frozenset()
    onset: Onset = "start"
    quick: bool = False  # part of the --quick subset
    note: str = ""
    multilabel: bool = False  # multi-hot targets: learnt is judged per column (see learnt.py)

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def healthy(self) -> bool:
        return not self.expected


@dataclass(frozen=True)
class Group:
    """One data set and architecture; ``cases()`` makes one run per seed."""

    name: str
    spec: Callable[[int], dict[str, Any]]
    dataset: Callable[[int], dict[str, np.ndarray]] | None = None  # None: spec's dataset is a built-in
    regression: bool = False
    expected: frozenset[str] = frozenset()
    acceptable: frozenset[str] = frozenset()
    onset: Onset = "start"
    multilabel: bool = False
    quick: bool = False  # its first seed is part of the --quick subset
    seeds: tuple[int, ...] = SEEDS
    note: str = ""

    def cases(self) -> list[CalibrationCase]:
        made = []
        for index, seed in enumerate(self.seeds):
            dataset = None if self.dataset is None else partial(self.dataset, seed)
            case = Case(f"{self.name}-s{seed}", "calibration", {**self.spec(seed), "seed": seed}, set(self.expected),
                        dataset, regression=self.regression)
            made.append(CalibrationCase(case, self.name, seed, self.expected, self.acceptable, self.onset,
                                        quick=self.quick and index == 0, note=self.note,
                                        multilabel=self.multilabel))
        return made


def spec(dataset: str, input_shape: list, layers: list[dict], loss: str, *, optimizer: Any = "adam",
         metrics: tuple[str, ...] = ("accuracy",), epochs: int = 15, batch_size: int = 32,
         callbacks: tuple[dict, ...] = (), **data_part: Any) -> dict[str, Any]:
    return {"dataset": dataset, "data": data_part, "model": {"input_shape": input_shape, "layers": layers},
            "compile": {"optimizer": optimizer, "loss": loss, "metrics": list(metrics)},
            "fit": {"epochs": epochs, "batch_size": batch_size, "callbacks": list(callbacks)}}


def dense(units: int, activation: str | None = "relu", **args: Any) -> dict[str, Any]:
    return {"type": "Dense", "units": units, "activation": activation, **args}


def adam(rate: float) -> dict[str, Any]:
    return {"type": "Adam", "learning_rate": rate}


def sgd(rate: float, momentum: float = 0.0) -> dict[str, Any]:
    return {"type": "SGD", "learning_rate": rate, "momentum": momentum}


EARLY_STOP = {"type": "EarlyStopping", "monitor": "val_loss", "patience": 3, "restore_best_weights": True}
REDUCE_LR = {"type": "ReduceLROnPlateau", "monitor": "val_loss", "factor": 0.5, "patience": 2}
FLAT = {"type": "Flatten"}
SMALL_INIT = {"type": "RandomNormal", "stddev": 0.02}


def builtin(name: str) -> Callable[[int], dict[str, np.ndarray]]:
    return lambda seed: load_builtin(f"builtin:{name}")


def shuffled(load: Callable[[int], dict[str, np.ndarray]]) -> Callable[[int], dict[str, np.ndarray]]:
    return lambda seed: data.shuffled_labels(load(seed), seed)


def raw(load: Callable[[int], dict[str, np.ndarray]]) -> Callable[[int], dict[str, np.ndarray]]:
    return lambda seed: data.raw_scale(load(seed))


def _tabular(seed: int, **kw: Any) -> dict[str, np.ndarray]:
    return data.tabular(seed=seed, **kw)


HEALTHY = [
    Group("digits-mlp-small-val", lambda s: spec(
        "builtin:digits", [8, 8, 1], [FLAT, dense(32), dense(10, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(3e-3), epochs=12, scale_x="rescale", validation_split=0.1), quick=True),
    Group("digits-cnn-early-stop", lambda s: spec(
        "builtin:digits", [8, 8, 1],
        [{"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
         {"type": "MaxPooling2D"}, FLAT, dense(10, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(3e-3), epochs=20, callbacks=(EARLY_STOP,), scale_x="rescale")),
    Group("cancer-mlp-tiny-val", lambda s: spec(
        "builtin:breast_cancer", [30], [dense(16), dense(1, "sigmoid")], "binary_crossentropy",
        optimizer=adam(1e-3), epochs=20, scale_x="standardize", validation_split=0.1), quick=True),
    Group("cancer-mlp-early-stop", lambda s: spec(
        "builtin:breast_cancer", [30], [dense(32), dense(1, "sigmoid")], "binary_crossentropy",
        optimizer=adam(1e-2), epochs=40, callbacks=(EARLY_STOP,), scale_x="standardize")),
    Group("wine-mlp-slow-start", lambda s: spec(
        "builtin:wine", [13], [dense(16, kernel_initializer=SMALL_INIT), dense(16, kernel_initializer=SMALL_INIT),
                               dense(3, "softmax")], "sparse_categorical_crossentropy",
        optimizer=sgd(0.05, 0.5), epochs=25, batch_size=16, scale_x="standardize"),
        note="small initial weights: the loss sits near chance for a few epochs, then falls", quick=True),
    Group("iris-mlp-reduce-lr", lambda s: spec(
        "builtin:iris", [4], [dense(16), dense(3, "softmax")], "categorical_crossentropy",
        optimizer=adam(0.02), epochs=25, batch_size=16, callbacks=(REDUCE_LR,), scale_x="standardize",
        one_hot=True), quick=True),
    Group("diabetes-regression", lambda s: spec(
        "builtin:diabetes", [10], [dense(32), dense(1, None)], "mse", optimizer=adam(3e-3), metrics=("mae",),
        epochs=30, callbacks=(EARLY_STOP,), scale_x="standardize", scale_y="standardize"), regression=True),
    Group("synth-regression-large-val", lambda s: spec(
        "generated", [12], [dense(32), dense(1, None)], "mse", optimizer=adam(3e-3), metrics=("mae",),
        epochs=20, scale_x="standardize", scale_y="standardize", validation_split=0.5),
        lambda s: data.regression(seed=s), regression=True),
    Group("multilabel-mlp", lambda s: spec(
        "generated", [20], [dense(32), dense(5, "sigmoid")], "binary_crossentropy", optimizer=adam(3e-3),
        metrics=("binary_accuracy",), epochs=15, scale_x="standardize"), lambda s: data.multilabel(seed=s),
        multilabel=True, quick=True),
    Group("imbalanced-binary-mlp", lambda s: spec(
        "generated", [20], [dense(32), dense(1, "sigmoid")], "binary_crossentropy", optimizer=adam(1e-3),
        epochs=15, scale_x="standardize"), partial(_tabular, n=1500, weights=[0.9, 0.1]),
        acceptable=frozenset({"class_imbalance"}), note="90/10 classes: the preflight note about accuracy is true"),
    Group("tabular-4class-large-val", lambda s: spec(
        "generated", [20], [dense(64), {"type": "Dropout", "rate": 0.2}, dense(4, "softmax")],
        "sparse_categorical_crossentropy", optimizer=adam(2e-3), epochs=15, scale_x="standardize",
        validation_split=0.5), partial(_tabular, n=1600, classes=4)),
    Group("waves-conv1d", lambda s: spec(
        "generated", [64, 1],
        [{"type": "Conv1D", "filters": 8, "kernel_size": 5, "activation": "relu"}, {"type": "MaxPooling1D"},
         {"type": "Conv1D", "filters": 16, "kernel_size": 5, "activation": "relu"},
         {"type": "GlobalAveragePooling1D"}, dense(3, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(3e-3), epochs=12), lambda s: data.waves(seed=s)),
    Group("padded-gru-masking", lambda s: spec(
        "generated", [30, 2], [{"type": "Masking", "mask_value": 0.0}, {"type": "GRU", "units": 16},
                               dense(1, "sigmoid")], "binary_crossentropy", optimizer=adam(3e-3), epochs=12),
        lambda s: data.padded_sequences(seed=s)),
    Group("padded-lstm-masking-early-stop", lambda s: spec(
        "generated", [30, 2], [{"type": "Masking", "mask_value": 0.0}, {"type": "LSTM", "units": 16},
                               dense(2, "softmax")], "sparse_categorical_crossentropy", optimizer=adam(3e-3),
        epochs=15, callbacks=(EARLY_STOP,), validation_split=0.15), lambda s: data.padded_sequences(seed=s + 10),
        quick=True),
]

DEEP_SIGMOID = [dense(32, "sigmoid") for _ in range(10)]
SATURATION_SIDE_EFFECTS = frozenset({"unscaled_inputs", "stuck_at_chance", "plateau", "vanishing_gradients",
                                     "unstable"})

BUGGY = [
    Group("bug-stuck-shuffled-digits", lambda s: spec(
        "generated", [8, 8, 1], [FLAT, dense(32), dense(10, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(1e-3), epochs=10, scale_x="rescale"), shuffled(builtin("digits")),
        expected=frozenset({"stuck_at_chance"}), acceptable=frozenset({"plateau", "overfitting"}),
        note="labels permuted: nothing to learn"),
    Group("bug-stuck-shuffled-multilabel", lambda s: spec(
        "generated", [20], [dense(32), dense(5, "sigmoid")], "binary_crossentropy", optimizer=adam(3e-3),
        metrics=("binary_accuracy",), epochs=12, scale_x="standardize"),
        lambda s: data.shuffled_labels(data.multilabel(seed=s), s), multilabel=True,
        expected=frozenset({"stuck_at_chance"}), acceptable=frozenset({"plateau", "overfitting"}),
        note="multi-hot rows permuted: each column's chance level is its own binary entropy", quick=True),
    Group("bug-stuck-shuffled-regression", lambda s: spec(
        "generated", [12], [dense(32), dense(1, None)], "mse", optimizer=adam(3e-3), metrics=("mae",), epochs=12,
        scale_x="standardize", scale_y="standardize"), lambda s: data.shuffled_labels(data.regression(seed=s), s),
        regression=True, expected=frozenset({"stuck_at_chance"}), acceptable=frozenset({"plateau", "overfitting"}),
        note="targets permuted: validation MSE stays at the target variance, no better than a constant"),
    Group("bug-stuck-dead-relu", lambda s: spec(
        "generated", [20], [dense(64), dense(64), dense(2, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(1.0), epochs=10, scale_x="standardize"), partial(_tabular, n=1000),
        expected=frozenset({"stuck_at_chance"}),
        acceptable=frozenset({"learning_rate_extreme", "vanishing_gradients", "plateau", "saturated_outputs",
                              "diverging", "unstable"}),
        onset="flat", note="an Adam rate of 1 kills the relu units in the first epochs; the loss settles at chance",
        quick=True),
    Group("bug-saturated-raw-inputs", lambda s: spec(
        "generated", [20], [dense(32), dense(3, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(1e-3), epochs=8), raw(partial(_tabular, n=1000, classes=3)),
        expected=frozenset({"saturated_outputs"}), acceptable=SATURATION_SIDE_EFFECTS,
        note="inputs in the thousands, no scale_x: logits in the thousands", quick=True),
    Group("bug-saturated-raw-cancer", lambda s: spec(
        "builtin:breast_cancer", [30], [dense(16), dense(1, "sigmoid")], "binary_crossentropy",
        optimizer=adam(1e-3), epochs=10),
        expected=frozenset({"saturated_outputs"}), acceptable=SATURATION_SIDE_EFFECTS,
        note="raw features up to 4254, no scale_x: the loss starts near 100 and only creeps down"),
    Group("bug-diverging-regression", lambda s: spec(
        "generated", [12], [dense(32), dense(1, None)], "mse", optimizer=sgd(0.5), metrics=("mae",),
        epochs=10, scale_x="standardize"), lambda s: data.regression(seed=s),
        regression=True, expected=frozenset({"diverging"}),
        acceptable=frozenset({"learning_rate_extreme", "unstable"}),
        note="targets in the hundreds (no scale_y) and SGD at 0.5 on MSE"),
    Group("bug-diverging-momentum", lambda s: spec(
        "builtin:diabetes", [10], [dense(32), dense(1, None)], "mse", optimizer=sgd(0.1, 0.95), metrics=("mae",),
        epochs=12, scale_x="standardize", scale_y="standardize"), regression=True,
        expected=frozenset({"diverging"}),
        # stuck_at_chance is true here too: the validation loss never gets below the validation targets' own
        # variance (seed 1: 1.09, 1.05, 1.07 in the first epochs against 0.89, its lowest 0.97), the run
        # learns nothing before it blows up (as a saturated run is stuck as well).
        acceptable=frozenset({"unstable", "learning_rate_extreme", "stuck_at_chance"}),
        onset="after_best_loss", note="SGD 0.1 with momentum 0.95: the loss climbs, in bounces, over the run",
        quick=True),
    Group("bug-overfit-noisy-tabular", lambda s: spec(
        "generated", [20], [dense(256), dense(256), dense(2, "softmax")], "sparse_categorical_crossentropy",
        optimizer=adam(1e-3), epochs=40, scale_x="standardize", validation_split=0.5),
        partial(_tabular, n=400), expected=frozenset({"overfitting"}), acceptable=frozenset({"unstable"}),
        onset="overfit", note="a wide net, 200 training samples, 40 epochs"),
    Group("bug-overfit-memorise-digits", lambda s: spec(
        "builtin:digits", [8, 8, 1], [FLAT, dense(256), dense(256), dense(10, "softmax")],
        "sparse_categorical_crossentropy", optimizer=adam(1e-3), epochs=40, scale_x="rescale", validation_split=0.85),
        expected=frozenset({"overfitting"}), onset="overfit",
        note="270 training images, two 256-unit layers, 40 epochs: training accuracy 1.0 against about 0.94, "
             "the validation loss flat-to-rising for the second half", quick=True,
        # Not seed 2: there the validation loss keeps falling to its best at epoch 37 of 40 (0.153 at epoch 20,
        # 0.136 at 37) and validation accuracy holds 0.955 against 1.0: no rise, no gap far apart, the best
        # epoch at the end. It does not show the over-fitting this case stands for (what issue 10 calls it:
        # a gap that keeps growing, validation far below, the best epoch far from the end).
        seeds=(1, 3)),
    Group("bug-overfit-noisy-digits", lambda s: spec(
        "generated", [8, 8, 1], [FLAT, dense(256), dense(256), dense(10, "softmax")],
        "sparse_categorical_crossentropy", optimizer=adam(1e-3), epochs=40, scale_x="rescale", validation_split=0.8),
        lambda s: data.noisy_labels(load_builtin("builtin:digits"), 0.2, s),
        expected=frozenset({"overfitting"}), onset="overfit",
        note="20 % wrong labels, 360 training images, 40 epochs: the validation loss rises from about epoch 9"),
    Group("bug-plateau-l2-linear-digits", lambda s: spec(
        "builtin:digits", [8, 8, 1], [FLAT, dense(10, "softmax", kernel_regularizer={"type": "L2", "l2": 0.3})],
        "sparse_categorical_crossentropy", optimizer=adam(1e-2), epochs=15, scale_x="rescale"),
        expected=frozenset({"plateau"}), onset="flat",
        note="an L2 penalty of 0.3 holds a linear model far from what digits allow: the loss levels off at once"),
    Group("bug-plateau-linear-regression", lambda s: spec(
        "generated", [4], [dense(1, None)], "mse", optimizer=adam(0.05), metrics=("mae",), epochs=15,
        scale_x="standardize"), lambda s: data.half_linear(seed=s), regression=True,
        expected=frozenset({"plateau"}), acceptable=frozenset({"stuck_at_chance"}), onset="flat",
        note="a linear model on a mostly non-linear target: the MSE levels off near 3/4 of the variance", quick=True),
    Group("bug-unstable-batch1", lambda s: spec(
        "builtin:breast_cancer", [30], [dense(32), dense(1, "sigmoid")], "binary_crossentropy",
        optimizer=adam(0.05), epochs=10, batch_size=1, scale_x="standardize"),
        expected=frozenset({"unstable"}), acceptable=frozenset({"tiny_batch", "learning_rate_extreme", "overfitting"}),
        onset="bounce", note="batch size 1 at an Adam rate of 0.05", quick=True),
    Group("bug-unstable-sgd-diabetes", lambda s: spec(
        "builtin:diabetes", [10], [dense(32), dense(1, None)], "mse", optimizer=sgd(0.25), metrics=("mae",),
        epochs=12, scale_x="standardize", scale_y="standardize"), regression=True,
        expected=frozenset({"unstable"}), acceptable=frozenset({"learning_rate_extreme", "overfitting", "diverging"}),
        onset="bounce", note="plain SGD at 0.25 on 350 samples: the validation loss jumps 2-5x and back",
        quick=True),
    Group("bug-vanishing-deep-sigmoid", lambda s: spec(
        "builtin:digits", [8, 8, 1], [FLAT, *DEEP_SIGMOID, dense(10, "softmax")], "sparse_categorical_crossentropy",
        optimizer=sgd(0.01), epochs=10, scale_x="rescale"),
        expected=frozenset({"vanishing_gradients"}),
        acceptable=frozenset({"saturating_activation", "stuck_at_chance", "plateau"}),
        note="ten sigmoid layers trained with plain SGD", quick=True),
    Group("bug-vanishing-deep-sigmoid-cancer", lambda s: spec(
        "builtin:breast_cancer", [30], [*DEEP_SIGMOID, dense(1, "sigmoid")], "binary_crossentropy",
        optimizer=sgd(0.05), epochs=10, scale_x="standardize"),
        expected=frozenset({"vanishing_gradients"}),
        acceptable=frozenset({"saturating_activation", "stuck_at_chance", "plateau"}),
        note="the same ten sigmoid layers on 30 features: stuck at the majority class from epoch 2"),
]

CASES: list[CalibrationCase] = [c for group in HEALTHY + BUGGY for c in group.cases()]
