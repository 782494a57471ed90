"""Metrics of predictions on the held-out samples, the same function for every member and the ensemble.

Classifiers are judged on probabilities (logits were turned into them), so ``loss`` is
the cross-entropy that categorical, sparse categorical and binary cross-entropy all
compute, with Keras's clipping (1e-7); ``accuracy`` as Keras counts it. Regressors get
``mse`` and ``mae``, and ``loss`` when the members share one of those two losses.
"""

from typing import Any

import numpy as np

from models.enums import TaskKind

EPSILON = 1e-7  # keras.backend.epsilon(): the clipping of Keras's cross-entropies
REGRESSION_LOSS = {"mean_squared_error": "mse", "mean_absolute_error": "mae"}


def loss_name(kind: TaskKind, binary: bool, losses: list[str]) -> str:
    """What ``loss`` is for these members (``losses``: their canonical loss names)."""
    if kind is TaskKind.classifier:
        return "binary_crossentropy" if binary else "categorical_crossentropy"
    shared = set(losses)
    return losses[0] if len(shared) == 1 and losses[0] in REGRESSION_LOSS else "mean_squared_error"


def held_out_metrics(kind: TaskKind, loss: str, predictions: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    p = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(y)
    if kind is TaskKind.regression:
        p = p.reshape(y.shape) if p.size == y.size else p
        error = p - y.astype(np.float64)
        metrics = {"mse": float(np.mean(error ** 2)), "mae": float(np.mean(np.abs(error)))}
        return {"loss": metrics[REGRESSION_LOSS.get(loss, "mse")], **metrics}
    p = np.clip(p, EPSILON, 1 - EPSILON)
    if loss == "binary_crossentropy":  # one sigmoid unit per label (a single unit: the positive class)
        truth = y.reshape(p.shape).astype(np.float64)
        bce = -(truth * np.log(p) + (1 - truth) * np.log(1 - p))
        return {"loss": float(np.mean(bce)), "accuracy": float(np.mean((p > 0.5) == (truth > 0.5)))}
    classes = p.shape[-1]
    one_hot = y.shape == p.shape and classes > 1  # targets stored one-hot, else class indices
    labels = (y.argmax(axis=-1) if one_hot else y).reshape(-1).astype(np.int64)
    p = p.reshape(-1, classes)  # a sequence of class distributions counts each step, as Keras does
    picked = p[np.arange(len(p)), labels]
    return {"loss": float(-np.mean(np.log(picked))), "accuracy": float(np.mean(p.argmax(axis=1) == labels))}
