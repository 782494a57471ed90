"""The onset of a bug, read from the run's own curve: the first epoch (1-based) at which a
careful reader of the curve would see it. None: the curve never shows it.

- ``start``: epoch 1 (stuck, saturated, vanishing, blown up from the first epoch);
- ``overfit``: the earlier of two things a reader of the curve sees, each with its own visible
  evidence (see ``overfit_from``): the validation loss turning up for good, or a model that
  fits its training set while the validation loss has stalled;
- ``after_best_loss``: the epoch after the lowest training loss (from there on it climbs: diverging);
- ``flat``: the first epoch of the final stretch in which the training loss stays within 5 % of
  its last value, plus two (three flat epochs make a plateau, or a stuck run, visible);
- ``bounce``: the first epoch at which the training or validation loss falls by more than 10 %
  after it had risen by more than 10 % (up and down again: unstable).

Overfitting, as read from the curve alone (none of the rule's noise bands, trends or thresholds):

- *turned up*: the first epoch from which the validation loss stays more than 5 % above the
  lowest it had reached, to the end of the run, while the training loss keeps falling
  (Prechelt's generalization loss GL(t) = val(t) / min val(s ≤ t) - 1 above 5 %, held: the
  early-stopping criterion of "Early Stopping - But When?", 1998; held, so that one noisy
  epoch is not an onset);
- *memorised*: the validation loss has stalled (from the first epoch within 5 % of its best it
  never improves by more than that again, visible two epochs later as for a plateau) and the
  model fits its training set (training accuracy at least 0.99, at most one sample in a hundred
  wrong), the training loss still falling: from there, more epochs only memorise.

The onset is the earlier of the two. Why not "the epoch after the validation loss first came
within 5 % of its best" (this benchmark's first definition): a validation loss that levels off
while the training loss keeps falling is what every healthy run looks like at convergence;
on label-noise runs it put the onset 5-13 epochs before any reader could tell them from a
healthy run (noisy digits s1: the validation loss within 2 % of its best from epoch 5 to 16,
rising from 17). What tells over-fitting apart on the curve is the validation loss turning up,
or the training set fitted (near perfect accuracy) while validation stands still.

The thresholds are this module's own conventions (5 % as ``NEAR_BEST`` and ``FLAT_WITHIN``, two
epochs to see a stall as ``FLAT_VISIBLE``) and Prechelt's; the rule (diagnosis/rules/overfitting.py)
decides on other evidence: rises and gaps in noise bands, a fitted trend's t statistic, a 3 %
materiality, training accuracy 0.98 against validation 5 points below.
"""

import math
from typing import Any, Literal

Onset = Literal["start", "overfit", "after_best_loss", "flat", "bounce"]
NEAR_BEST = 0.05
TURNED_UP = 0.05
FITS = 0.99
FLAT_WITHIN = 0.05
FLAT_VISIBLE = 2
BOUNCE = 0.10
ACCURACY = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy")


def series(curves: list[dict[str, Any]], key: str) -> list[float] | None:
    """The column, a blown-up epoch (stored as null, or not finite) as infinity; None if it was never logged."""
    if not curves or all(c.get(key) is None for c in curves):
        return None
    values = [c.get(key) for c in curves]
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf for v in values]


def near_best_from(values: list[float]) -> int:
    """The index from which the values never improve by more than ``NEAR_BEST`` again."""
    best = min(values)
    return next(i for i, v in enumerate(values) if v <= best * (1 + NEAR_BEST))


def turned_up(vals: list[float], losses: list[float]) -> int | None:
    """The first epoch from which every validation loss is more than ``TURNED_UP`` above the lowest
    before it, for at least two epochs and to the end, the training loss lower at the end."""
    for t in range(1, len(vals) - 1):
        if all(vals[u] > (1 + TURNED_UP) * min(vals[:u]) for u in range(t, len(vals))) and losses[-1] < losses[t]:
            return t + 1
    return None


def memorised(vals: list[float], losses: list[float], accuracy: list[float] | None) -> int | None:
    """The first epoch, once a stalled validation loss is visible, at which the training accuracy is
    at least ``FITS``, the training loss lower at the end."""
    if accuracy is None:
        return None
    for t in range(near_best_from(vals) + FLAT_VISIBLE, len(vals)):
        if FITS <= accuracy[t] <= 1 and losses[-1] < losses[t]:  # a blown-up epoch's accuracy reads as infinity
            return t + 1
    return None


def overfit_from(curves: list[dict[str, Any]]) -> int | None:
    vals, losses = series(curves, "val_loss"), series(curves, "loss")
    if vals is None or losses is None:
        return None
    accuracy = next((a for a in (series(curves, k) for k in ACCURACY) if a is not None), None)
    onsets = [e for e in (turned_up(vals, losses), memorised(vals, losses, accuracy)) if e is not None]
    return min(onsets) if onsets else None


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
    if kind == "overfit":
        return overfit_from(curves)
    if not losses:
        return None
    return after_lowest(losses) if kind == "after_best_loss" else flat_from(losses)
