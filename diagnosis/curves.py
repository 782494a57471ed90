"""What the rules see of a training run: per-epoch evidence and the task's reference levels."""

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Task:
    """Reference levels, computed from the training split by the worker (``diagnosis.reference.task_of``).

    ``chance_loss`` is the loss of the best constant predictor on the training targets under the job's
    own loss, whatever the task: the label entropy for (sparse) categorical cross-entropy (ln K only when
    the K classes are balanced), the mean per-column binary entropy for binary cross-entropy (multi-hot
    too), the variance (mean over outputs) for MSE, the mean absolute deviation from the median for MAE,
    the numerically found best constant for other elementwise losses; None where there is none
    (cosine similarity, a loss on targets it cannot score). A model whose loss sits there has learnt
    nothing from its inputs.

    ``classification``: class targets under a classification loss. ``majority_rate``: the accuracy of
    that constant predictor (per column for binary cross-entropy). ``classes``: labels seen (columns for
    one-hot and multi-label targets). ``target_variance``: variance of the targets, mean over outputs
    (regression only). ``multi_label``: several 0/1 columns under binary cross-entropy, each its own
    yes/no question. ``label_like``: a regression loss on class-like targets (0/1, a few small integers,
    one-hot or multi-hot), e.g. MSE on 0/1 targets whose constant-prediction loss is p(1-p).
    """

    classification: bool
    loss: str
    chance_loss: float | None = None
    majority_rate: float | None = None
    classes: int | None = None
    target_variance: float | None = None
    has_validation: bool = True
    early_stopping_restores_best: bool = False
    multi_label: bool = False
    label_like: bool = False
    # The same references on the validation targets (the best constant's loss there: their own label
    # entropy or variance; the accuracy of its majority class), where the validation split is known:
    # what "no better than a constant on unseen data" means, whatever the training split's level.
    val_chance_loss: float | None = None
    val_majority_rate: float | None = None


@dataclass
class Epoch:
    epoch: int
    logs: dict[str, float]
    batch_losses: list[float] = field(default_factory=list)
    pinned_fraction: float | None = None  # probe: share of predictions pinned at 0 or 1
    gradient_norms: list[float] | None = None  # probe: per weight layer, input side first
    # The noise of the epoch's mean losses (diagnosis/noise.py): per-sample standard deviations and
    # the sample counts they are means over. None where not measured (states saved before they were).
    loss_std: float | None = None  # from the spread of the per-batch losses
    n_train: int | None = None
    val_loss_std: float | None = None  # from a forward pass over a fixed validation probe
    n_val: int | None = None
    top_class_share: float | None = None  # probe: share of the predictions in the most predicted class
    # Batches behind each value of batch_losses: steps_per_execution (each value a chunk's mean loss).
    batches_per_loss: int = 1

    def get(self, key: str) -> float | None:
        value = self.logs.get(key)
        return None if value is None or not math.isfinite(value) else float(value)

    @property
    def loss(self) -> float | None:
        return self.get("loss")

    @property
    def val_loss(self) -> float | None:
        return self.get("val_loss")

    def accuracy(self) -> float | None:
        return next((self.get(k) for k in ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
                                           "binary_accuracy") if k in self.logs), None)

    def val_accuracy(self) -> float | None:
        return next((self.get(k) for k in ("val_accuracy", "val_acc", "val_sparse_categorical_accuracy",
                                           "val_categorical_accuracy", "val_binary_accuracy") if k in self.logs), None)


def reference_loss(task: Task) -> float | None:
    """The loss of the best constant predictor: what a model that ignores its input reaches."""
    if task.chance_loss is not None:
        return task.chance_loss
    return task.target_variance if task.loss == "mean_squared_error" else None


def series(history: list[Epoch], key: str) -> list[float | None]:
    return [e.get(key) for e in history]


def rel_change(a: float, b: float) -> float:
    return abs(b - a) / max(abs(a), 1e-12)


def as_evidence(values: list[float | None], digits: int = 4) -> list[float | None]:
    return [None if v is None else round(v, digits) for v in values]


def summary(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
