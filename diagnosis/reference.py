"""Reference levels of a task: what a model that ignores its input scores.

The reference is the loss of the best *constant* prediction on the training
targets, under the job's own loss, so "no better than a constant" reads the same
for a classifier (the label entropy), a multi-label model (the mean per-column
binary entropy) and a regression (the variance for MSE, the spread around the
median for MAE). Targets are read through the one label rule (``datastore.labels``).
"""

from collections.abc import Callable

import numpy as np

from datastore.labels import Targets, labels_of, targets_of
from diagnosis.curves import Task
from diagnosis.facts import REGRESSION_LOSSES

EPSILON = 1e-7  # Keras's backend epsilon: probabilities are clipped to [eps, 1 - eps]
SAMPLE_ROWS = 20_000  # rows read for the numerically found constants
LABEL_LIKE_VALUES = 10  # a regression target with at most this many whole values reads as class labels
FOCAL = {"categorical_focal_crossentropy": "categorical_crossentropy",
         "binary_focal_crossentropy": "binary_crossentropy"}
Elementwise = Callable[[np.ndarray, np.ndarray], np.ndarray]


def task_of(y: np.ndarray, loss: str) -> Task:
    """The reference levels of training targets ``y`` (one row per sample) under ``loss`` (canonical name)."""
    y = np.asarray(y)
    if len(y) == 0 or y.dtype.kind not in "biuf":
        return Task(classification=False, loss=loss)
    targets = targets_of(y)
    rows = y.reshape(len(y), -1).astype(np.float64)
    if loss in REGRESSION_LOSSES:
        return _regression(rows, loss, targets)
    if loss == "sparse_categorical_crossentropy":
        task = _sparse(y, loss)
    elif loss == "categorical_crossentropy":
        task = _categorical(y, loss)
    elif loss == "binary_crossentropy":
        task = _binary(rows, loss, targets)
    elif loss in ("hinge", "squared_hinge"):
        task = _hinge(rows, loss, targets)
    elif loss in FOCAL:  # class targets, but no closed form for the constant's focal loss
        task = task_of(y, FOCAL[loss])
        task.loss, task.chance_loss = loss, None
        return task
    else:
        task = None
    if task is None:  # a loss without a reference here, or targets it cannot score: only the variance
        return Task(classification=False, loss=loss, target_variance=_variance(rows))
    return task


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """Per column: the binary cross-entropy of predicting the column's mean, as Keras computes it (clipped)."""
    q = np.clip(p, EPSILON, 1 - EPSILON)
    return -(p * np.log(q) + (1 - p) * np.log(1 - q))


def _variance(rows: np.ndarray) -> float:
    return float(rows.var(axis=0).mean())


def _sparse(y: np.ndarray, loss: str) -> Task | None:
    # Keras scores every element of y as a class index: (n,), (n, 1) and per-step labels (n, T) alike.
    labels = labels_of(y.reshape(-1, 1))
    if labels is None:
        return None
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return Task(classification=True, loss=loss, chance_loss=_entropy(p), majority_rate=float(p.max()),
                classes=len(counts))


def _categorical(y: np.ndarray, loss: str) -> Task | None:
    # One distribution per vector of the last axis (per step for sequence targets); the best constant is their mean.
    vectors = y.reshape(-1, y.shape[-1] if y.ndim > 1 else 1).astype(np.float64)
    if vectors.shape[1] < 2 or vectors.min() < 0 or not np.allclose(vectors.sum(axis=1), 1, atol=1e-3):
        return None
    q = vectors.mean(axis=0)
    return Task(classification=True, loss=loss, chance_loss=_entropy(q), majority_rate=float(q.max()),
                classes=vectors.shape[1])


def _binary(rows: np.ndarray, loss: str, targets: Targets) -> Task | None:
    # Keras averages the binary cross-entropy over the columns: each column's best constant is its mean.
    if rows.min() < 0 or rows.max() > 1:
        return None
    p = rows.mean(axis=0)
    binary = targets.binary_columns
    return Task(classification=binary, loss=loss, chance_loss=float(_binary_entropy(p).mean()),
                majority_rate=float(np.maximum(p, 1 - p).mean()) if binary else None,
                classes=(2 if rows.shape[1] == 1 else rows.shape[1]) if binary else None,
                target_variance=None if binary else _variance(rows),
                multi_label=binary and rows.shape[1] > 1)


def _hinge(rows: np.ndarray, loss: str, targets: Targets) -> Task | None:
    if not targets.binary_columns and not np.isin(rows, (-1, 1)).all():
        return None
    signs = np.where(rows == 0, -1.0, rows)  # Keras maps 0/1 labels to -1/+1
    shape: Elementwise = ((lambda t, c: np.maximum(0, 1 - t * c)) if loss == "hinge"
                          else (lambda t, c: np.maximum(0, 1 - t * c) ** 2))
    p = (signs > 0).mean(axis=0)
    return Task(classification=True, loss=loss, chance_loss=_best_constant(signs, shape),
                majority_rate=float(np.maximum(p, 1 - p).mean()), classes=2 if rows.shape[1] == 1 else rows.shape[1],
                multi_label=rows.shape[1] > 1)


def _regression(rows: np.ndarray, loss: str, targets: Targets) -> Task:
    task = Task(classification=False, loss=loss, chance_loss=_regression_reference(rows, loss),
                target_variance=_variance(rows))
    if targets.kind in ("one_hot", "multi_hot"):
        p = rows.mean(axis=0)
        task.label_like, task.multi_label = True, targets.kind == "multi_hot"
        task.majority_rate, task.classes = float(np.maximum(p, 1 - p).mean()), rows.shape[1]
    elif targets.labels is not None:
        values, counts = np.unique(targets.labels, return_counts=True)
        if len(values) <= LABEL_LIKE_VALUES:
            task.label_like = True
            task.majority_rate, task.classes = float(counts.max() / counts.sum()), len(values)
    return task


def _regression_reference(rows: np.ndarray, loss: str) -> float | None:
    if loss == "mean_squared_error":
        return _variance(rows)
    if loss == "mean_absolute_error":
        return float(np.abs(rows - np.median(rows, axis=0)).mean())
    if loss == "mean_squared_logarithmic_error":  # the constant's log1p is the mean log1p of the targets
        return _variance(np.log1p(np.maximum(rows, EPSILON)))
    if loss == "mean_absolute_percentage_error":
        return _best_constant(rows, lambda t, c: 100 * np.abs(t - c) / np.maximum(np.abs(t), EPSILON))
    if loss == "huber":
        return _best_constant(rows, lambda t, c: np.where(np.abs(t - c) <= 1, 0.5 * (t - c) ** 2, np.abs(t - c) - 0.5))
    if loss == "log_cosh":
        return _best_constant(rows, lambda t, c: np.logaddexp(t - c, c - t) - np.log(2))
    return None  # cosine similarity: a constant's score depends on the direction only


def _best_constant(rows: np.ndarray, elementwise: Elementwise, steps: int = 60) -> float:
    """The mean loss of the best constant per column, for a loss convex in the prediction (golden-section search)."""
    if len(rows) > SAMPLE_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, SAMPLE_ROWS).astype(np.int64)]
    lo, hi = rows.min(axis=0), rows.max(axis=0)
    ratio = (np.sqrt(5) - 1) / 2

    def cost(c: np.ndarray) -> np.ndarray:
        return elementwise(rows, c[None, :]).mean(axis=0)

    for _ in range(steps):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        left = cost(a) <= cost(b)
        hi, lo = np.where(left, b, hi), np.where(left, lo, a)
    return float(cost((lo + hi) / 2).mean())
