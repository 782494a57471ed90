"""Numbers about a dataset and a spec that the rules read.

``DataFacts`` is computed from the arrays (memory-mapped is fine) and, for the
scale of x, from its per-feature statistics as the dataset's description stored
them at upload (dense arrays, sequences and image folders alike); ``SpecView``
normalizes the parts of a JSON spec that the rules look at (loss name, output
activation, layers).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from datastore.describe import feature_stats
from datastore.labels import Targets, targets_of
from datastore.reader import ArrayLike, select
from datastore.rows import select_rows

REGRESSION_LOSSES = {
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "cosine_similarity",
}
CLASSIFICATION_LOSSES = {"categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
                         "categorical_focal_crossentropy", "binary_focal_crossentropy"}
LOSS_ALIASES = {
    "mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error", "logcosh": "log_cosh", "huber_loss": "huber",
    "bce": "binary_crossentropy", "cce": "categorical_crossentropy", "scce": "sparse_categorical_crossentropy",
}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def keras_name(ref: Any) -> tuple[str, dict[str, Any]]:
    """``"adam"`` or ``{"type": "Adam", "learning_rate": 0.1}`` → ("adam", {"learning_rate": 0.1})."""
    if isinstance(ref, str):
        return ref, {}
    args = {k: v for k, v in ref.items() if k != "type"}
    return ref["type"], args


def canonical_loss(ref: Any) -> tuple[str, dict[str, Any]]:
    """A spec's loss as one name whatever way it was written ("mse", "MeanSquaredError",
    {"type": "MeanSquaredError"} → "mean_squared_error"), with its arguments."""
    name, args = keras_name(ref)
    name = snake(name)
    return LOSS_ALIASES.get(name, name), args


@dataclass(frozen=True)
class InputScale:
    """How large x's values are, from its per-feature statistics (``datastore.describe.feature_stats``).

    Features are the last axis: a table's columns, a sequence's step features (its padding
    is not data), an image's RGB channels (pixels as decoded, 0-255).
    """

    abs_max: float
    min: float
    feature_std: np.ndarray  # features that were seen; one overall figure past the listed width (4096)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any] | None) -> "InputScale | None":
        """None without statistics (a non-numeric array, an image folder stored before they were kept)."""
        overall = (stats or {}).get("overall") or {}
        if stats is None or overall.get("min") is None or overall.get("max") is None:
            return None
        listed = stats.get("std")
        std = [v for v in listed if v is not None] if listed is not None else [overall["std"]]
        return cls(abs_max=max(abs(overall["min"]), abs(overall["max"])), min=overall["min"],
                   feature_std=np.asarray(std, dtype=np.float64))


@dataclass
class DataFacts:
    """What the rules need to know about x and y, before any split."""

    samples: int
    x_sample_shape: tuple[int | None, ...]  # None for a variable axis (sequence steps, image sides)
    x_scale: InputScale | None
    y_sample_shape: tuple[int, ...]
    y_integer: bool
    y_min: float
    y_max: float
    y_mean: float
    y_std: float
    y: np.ndarray | None = field(default=None, repr=False)  # stored order, for the split checks

    @property
    def label_counts(self) -> dict[int, int] | None:
        labels = self.labels
        if labels is None:
            return None
        values, counts = np.unique(labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    @cached_property
    def targets(self) -> Targets | None:
        """What y holds, by the one label rule (``datastore.labels``); None when y was not read."""
        return None if self.y is None else targets_of(self.y)

    @property
    def labels(self) -> np.ndarray | None:
        """Integer class labels, from integer targets or one-hot rows; None for continuous or multi-hot targets."""
        targets = self.targets
        return None if targets is None else targets.labels

    def fold_labels(self, loss: Any) -> np.ndarray | None:
        """What cross-validation stratifies by (``datastore.splits``), one label per stored sample: the class
        labels of a classifier, i.e. targets the one label rule reads as labels under a loss that is not a
        regression loss (as scikit-learn stratifies a classifier's binary or multiclass targets); else None.
        Whole-number regression targets (``builtin:diabetes``) are thus not stratified."""
        return None if canonical_loss(loss)[0] in REGRESSION_LOSSES else self.labels

    @property
    def one_hot_stored(self) -> bool:
        targets = self.targets
        return targets is not None and targets.kind == "one_hot"


def _x_stats(x: str | Sequence[str], xs: ArrayLike, description: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """x's statistics as stored at upload, else computed now by the same function (a list of columns,
    a dataset stored before descriptions): the API and the worker read the same numbers."""
    described = ((description or {}).get("arrays") or {}).get(x) if isinstance(x, str) else None
    if described is not None and described.get("stats") is not None:
        return described["stats"]
    return feature_stats(xs)  # None for image folders: their pixels are only read at upload


def dataset_facts(arrays: Mapping[str, Any], x: str | Sequence[str], y: str | Sequence[str],
                  description: Mapping[str, Any] | None = None) -> DataFacts | None:
    """The facts of a stored dataset's ``x`` (dense, sequences or images) and ``y``; None for a missing
    name or a ``y`` that is not a plain array.

    Args:
        description: the dataset's ``datastore.describe`` description, whose statistics give x's scale.
    """
    try:
        xs = select(arrays, x)
    except KeyError:
        return None
    ys = select_rows(arrays, y)  # column lists stacked, rows read from the file
    return _facts(xs, ys, _x_stats(x, xs, description)) if ys is not None else None


def data_facts(x: np.ndarray, y: np.ndarray) -> DataFacts:
    """The facts of in-memory arrays (x's statistics computed as an upload computes them)."""
    return _facts(x, y, feature_stats(x))


def _facts(x: ArrayLike, y: Any, x_stats: Mapping[str, Any] | None) -> DataFacts:
    ys = np.asarray(y)
    y_float = ys.astype(np.float64, copy=False)
    integer = bool(ys.dtype.kind in "iub" or (ys.dtype.kind == "f" and np.all(np.mod(y_float, 1) == 0)))
    return DataFacts(
        samples=len(x),
        x_sample_shape=tuple(x.shape[1:]),
        x_scale=InputScale.from_stats(x_stats),
        y_sample_shape=tuple(ys.shape[1:]),
        y_integer=integer,
        y_min=float(y_float.min()), y_max=float(y_float.max()),
        y_mean=float(y_float.mean()), y_std=float(y_float.std()),
        y=ys,
    )


@dataclass
class LayerView:
    index: int
    type: str
    args: dict[str, Any]
    input_shape: list[Any] | None
    output_shape: list[Any] | None

    @property
    def activation(self) -> str | None:
        value = self.args.get("activation")
        return value if isinstance(value, str) else None


class SpecView:
    """Read-only conveniences over a JSON spec and its model summary."""

    def __init__(self, spec: dict[str, Any], summary: dict[str, Any]) -> None:
        self.spec = spec
        self.summary = summary
        self.loss, self.loss_args = canonical_loss(spec["compile"]["loss"])
        self.output_shape: list[Any] = list(summary["output_shape"][1:])
        self.layers = self._layers()

    def _layers(self) -> list[LayerView]:
        summary_layers = [lyr for lyr in self.summary["layers"] if lyr["type"] != "InputLayer"]
        spec_layers = self.spec["model"].get("layers")
        shapes = [self.summary["input_shape"]] + [lyr["output_shape"] for lyr in summary_layers]
        views = []
        for i, layer in enumerate(summary_layers):
            args = {k: v for k, v in spec_layers[i].items() if k != "type"} if spec_layers else {}
            views.append(LayerView(i, layer["type"], args, shapes[i], layer["output_shape"]))
        return views

    @property
    def has_layers(self) -> bool:
        return "layers" in self.spec["model"]

    @property
    def is_regression(self) -> bool:
        return self.loss in REGRESSION_LOSSES

    @property
    def from_logits(self) -> bool:
        return bool(self.loss_args.get("from_logits", False))

    @property
    def output_activation(self) -> str | None:
        """The activation of the output, looking through a trailing Activation/Softmax layer."""
        if not self.has_layers or not self.layers:
            return None
        last = self.layers[-1]
        if last.type == "Activation":
            return last.args.get("activation")
        if last.type == "Softmax":
            return "softmax"
        return last.activation or ("linear" if last.type == "Dense" else None)

    @property
    def metrics(self) -> list[str]:
        return [snake(keras_name(m)[0]) for m in self.spec["compile"].get("metrics", [])]
