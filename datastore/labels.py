"""The one rule for "are these targets class labels?".

The dataset description (``label_counts``), the preflight facts, the worker's
reference levels and so the verdict all read targets through ``targets_of``, so
they cannot disagree about what a target array holds (tests/datastore/test_labels.py
pins it). Rows, not values, are classified: a sample's target is one row of the
array, whatever its shape.

- ``labels``: one integer value per row, ``(n,)`` or ``(n, 1)`` (float arrays holding
  whole numbers count: a CSV column of 0.0/1.0 is labels). Negative integers are
  labels too (-1/+1 hinge targets); whether a loss accepts them is preflight's question.
- ``one_hot``: rows of 0/1 with exactly one 1: the class is the column of the 1.
- ``multi_hot``: rows of 0/1 where some row has no 1 or several (multi-label: each
  column is its own yes/no question, trained with sigmoid + binary cross-entropy).
- ``continuous``: anything else (fractions, several integer outputs, NaN or inf).
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["labels", "one_hot", "multi_hot", "continuous"]


@dataclass(frozen=True)
class Targets:
    kind: Kind
    labels: np.ndarray | None  # one int64 class per row for "labels" and "one_hot", else None
    columns: int  # values per row

    @property
    def binary_columns(self) -> bool:
        """Every value is 0 or 1 (one-hot, multi-hot, or one 0/1 column)."""
        return self.kind in ("one_hot", "multi_hot") or (
            self.labels is not None and bool(np.isin(self.labels, (0, 1)).all()))


def targets_of(block: np.ndarray) -> Targets:
    """What a block of target rows holds (see the module docstring)."""
    array = np.asarray(block)
    rows = array.reshape(len(array), -1)
    width = rows.shape[1]
    if array.dtype.kind not in "biuf" or rows.size == 0:
        return Targets("continuous", None, width)
    if array.dtype.kind == "f" and not (np.isfinite(rows).all() and (np.mod(rows, 1) == 0).all()):
        return Targets("continuous", None, width)
    if width == 1:
        return Targets("labels", rows[:, 0].astype(np.int64), 1)
    if not ((rows == 0) | (rows == 1)).all():
        return Targets("continuous", None, width)
    if (rows.sum(axis=1) == 1).all():
        return Targets("one_hot", rows.argmax(axis=1).astype(np.int64), width)
    return Targets("multi_hot", None, width)


def labels_of(block: np.ndarray) -> np.ndarray | None:
    """Integer class labels of a block of rows (from labels or one-hot rows), or None if the rows are not labels."""
    return targets_of(block).labels
