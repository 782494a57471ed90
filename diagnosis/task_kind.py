"""What a model predicts and what its output holds, read from its spec's loss.

The ensemble checks (API) and the ensemble build (worker) both read them here: a
cross-entropy loss makes a classifier, a regression loss a regressor; a loss with
``from_logits`` means the model outputs logits, which become probabilities through
softmax (categorical losses) or sigmoid (binary ones).
"""

from typing import Any, Literal

from diagnosis.facts import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, canonical_loss
from models.enums import TaskKind


def task_kind(loss: Any) -> TaskKind | None:
    """The kind of the spec's ``compile.loss`` (a name or ``{"type": ...}``); None for a loss of neither kind."""
    name, _ = canonical_loss(loss)
    if name in CLASSIFICATION_LOSSES:
        return TaskKind.classifier
    if name in REGRESSION_LOSSES:
        return TaskKind.regression
    return None


def logits_activation(loss: Any) -> Literal["softmax", "sigmoid"] | None:
    """How a classifier trained with ``loss`` turns its outputs into probabilities (None: they already are)."""
    name, args = canonical_loss(loss)
    if name not in CLASSIFICATION_LOSSES or not args.get("from_logits", False):
        return None
    return "sigmoid" if name.startswith("binary") else "softmax"


def is_binary(loss: Any) -> bool:
    """A binary cross-entropy: each output unit is one class's own probability (sigmoid)."""
    return canonical_loss(loss)[0].startswith("binary")
