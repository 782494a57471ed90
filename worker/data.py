"""Turn a stored dataset and the spec's ``data`` options into train/val/test arrays.

Order of operations matters for honesty: shuffle with the job's seed, split,
then fit scaling statistics on the training part only.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.spec import DataSpec, Scaling


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray


@dataclass
class PreparedData:
    train: Split
    validation: Split | None
    test: Split | None
    summary: dict[str, Any] = field(default_factory=dict)


class DataError(ValueError):
    """The data cannot be used with this spec; the message is for the user."""


def _reduce_axes(array: np.ndarray) -> tuple[int, ...]:
    # Per feature: every axis but the last (samples, time steps, pixels) is reduced.
    return tuple(range(array.ndim - 1)) if array.ndim > 1 else (0,)


def _fit_scaler(train: np.ndarray, method: Scaling) -> tuple[np.ndarray, np.ndarray]:
    axes = _reduce_axes(train)
    if method == "standardize":
        shift, scale = train.mean(axis=axes), train.std(axis=axes)
    elif method == "minmax":
        shift, scale = train.min(axis=axes), train.max(axis=axes) - train.min(axis=axes)
    else:
        shift, scale = np.zeros(1, train.dtype), np.array([np.abs(train).max()], train.dtype)
    scale = np.where(scale == 0, 1, scale).astype(train.dtype)
    return shift.astype(train.dtype), scale


def _label_counts(y: np.ndarray) -> dict[str, int] | None:
    labels = y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y), -1)
    if labels.ndim > 1 and labels.shape[1] != 1:
        return None
    labels = labels.reshape(-1)
    if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
        return None
    values, counts = np.unique(labels.astype(np.int64), return_counts=True)
    if len(values) > 1000:
        return None
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


def prepare(arrays: dict[str, np.ndarray], spec: DataSpec, seed: int) -> PreparedData:
    for role, name in (("x", spec.x), ("y", spec.y)):
        if name not in arrays:
            raise DataError(f"data.{role}: no array named '{name}'; the dataset has {sorted(arrays)}")
    x, y = arrays[spec.x], arrays[spec.y]
    if len(x) != len(y):
        raise DataError(f"data: x has {len(x)} samples but y has {len(y)}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if spec.shuffle else np.arange(n)
    x = x[order].astype("float32", copy=False)
    y = y[order]
    if spec.one_hot:
        if y.dtype.kind not in "iu" and not np.all(np.mod(y, 1) == 0):
            raise DataError("data.one_hot: y must hold integer class labels")
        labels = y.astype(np.int64).reshape(-1)
        y = np.eye(int(labels.max()) + 1, dtype="float32")[labels]

    n_test = int(round(n * spec.test_split))
    n_val = int(round(n * spec.validation_split))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"data: {n} samples leave nothing to train on after the splits")
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    parts = {k: Split(x[a:b], y[a:b]) if b > a else None for k, (a, b) in bounds.items()}

    train = parts["train"]
    assert train is not None
    for attr, method in (("x", spec.scale_x), ("y", spec.scale_y)):
        if method is None:
            continue
        shift, scale = _fit_scaler(getattr(train, attr).astype("float32"), method)
        for part in parts.values():
            if part is not None:
                setattr(part, attr, ((getattr(part, attr).astype("float32") - shift) / scale).astype("float32"))

    summary = {
        "samples": n,
        "seed": seed,
        "shuffled": spec.shuffle,
        "splits": {
            name: {"samples": len(part.x), "label_counts": _label_counts(part.y)}
            for name, part in parts.items() if part is not None
        },
    }
    return PreparedData(train, parts["validation"], parts["test"], summary)
