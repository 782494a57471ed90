"""The onset of a bug, read from the run's own curve: the first epoch (1-based) at which a
careful reader of the curve would see it. None: the curve never shows it.

- ``start``: epoch 1 (stuck, saturated, vanishing, blown up from the first epoch);
- ``after_best_val``: the epoch after the validation loss first came within 5 % of its best
  (from there on more epochs only fit the training part: overfitting);
- ``after_best_loss``: the epoch after the lowest training loss (from there on it climbs: diverging);
- ``flat``: the first epoch of the final stretch in which the training loss stays within 5 % of
  its last value, plus two (three flat epochs make a plateau, or a stuck run, visible);
- ``bounce``: the first epoch at which the training or validation loss falls by more than 10 %
  after it had risen by more than 10 % (up and down again: unstable).
"""

import math
from typing import Any, Literal

Onset = Literal["start", "after_best_val", "after_best_loss", "flat", "bounce"]
NEAR_BEST = 0.05
FLAT_WITHIN = 0.05
FLAT_VISIBLE = 2
BOUNCE = 0.10


def series(curves: list[dict[str, Any]], key: str) -> list[float] | None:
    """The column, a blown-up epoch (stored as null, or not finite) as infinity; None if it was never logged."""
    if not curves or all(c.get(key) is None for c in curves):
        return None
    values = [c.get(key) for c in curves]
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf for v in values]


def after_near_best(values: list[float]) -> int | None:
    best = min(values)
    first = next(i for i, v in enumerate(values) if v <= best * (1 + NEAR_BEST))
    return first + 2 if first + 1 < len(values) else None  # reached only at the end: never shows


def after_lowest(values: list[float]) -> int | None:
    lowest = min(range(len(values)), key=values.__getitem__)
    return lowest + 2 if lowest + 1 < len(values) else None


def flat_from(values: list[float]) -> int | None:
    last, start = values[-1], len(values)
    while start > 0 and abs(values[start - 1] - last) <= FLAT_WITHIN * abs(last):
        start -= 1
    onset = start + 1 + FLAT_VISIBLE
    return onset if onset <= len(values) else None


def bounced(values: list[float]) -> int | None:
    risen = False
    for i in range(1, len(values)):
        if values[i] > (1 + BOUNCE) * values[i - 1]:
            risen = True
        elif risen and values[i] * (1 + BOUNCE) < values[i - 1]:
            return i + 1
    return None


def onset_epoch(kind: Onset, curves: list[dict[str, Any]]) -> int | None:
    if kind == "start":
        return 1
    losses, vals = series(curves, "loss"), series(curves, "val_loss")
    if kind == "bounce":
        onsets = [e for e in (bounced(losses or []), bounced(vals or [])) if e is not None]
        return min(onsets) if onsets else None
    if kind == "after_best_val":
        return after_near_best(vals) if vals else None
    if not losses:
        return None
    return after_lowest(losses) if kind == "after_best_loss" else flat_from(losses)
