"""``overfitting``: a validation loss that rose beyond noise while the training loss fell, or a
memorisation gap that keeps growing; never for a model that learnt nothing."""

from diagnosis.curves import Epoch, Task, reference_loss, series
from diagnosis.noise import CLEAR, Band, confidence, gap_band, graded, noise_band, step_band, trend
from diagnosis.rules.common import SATURATED_SHARE, RuleResult, fitted_fall

OVERFIT_PATIENCE = 3
MEMORISE_PATIENCE = 4  # epochs without a better validation loss before a gap alone is overfitting
MEMORISE_RATIO = 3.0  # validation loss at least this many times the training loss (no accuracy logged)
LEARNT = 0.95  # a best validation loss below this share of the reference: the model learnt something
RECOVERING = 2.0  # train loss this many times its earlier minimum: recovering from a blow-up
TREND_CLEAR = 2.0
MATERIAL = 0.03  # smallest rise of the validation loss worth a finding, relative to its best


def _never_learnt(history: list[Epoch], task: Task, vals: list[float], band: Band) -> bool:
    """Nothing to over-fit: the validation loss never got clearly below the reference level,
    or the outputs are saturated, or the run is recovering from a blow-up."""
    reference = reference_loss(task)
    if reference is not None and min(vals) + band.width >= LEARNT * reference:
        return True
    last = history[-1]
    if last.pinned_fraction is not None and last.pinned_fraction >= SATURATED_SHARE and reference is not None \
            and last.loss is not None and last.loss >= 3 * reference:
        return True
    losses = [e.loss for e in history if e.loss is not None]
    return bool(losses) and losses[-1] > RECOVERING * min(losses)


def overfitting(history: list[Epoch], task: Task) -> RuleResult | None:
    """A validation loss that rose beyond noise while the training loss fell, or a gap that
    shows memorisation: training far better than validation, no material progress on validation
    for a while."""
    vals = series(history, "val_loss")
    losses = series(history, "loss")
    if not task.has_validation or None in vals or None in losses or len(history) < OVERFIT_PATIENCE + 1:
        return None
    best = min(range(len(vals)), key=lambda i: vals[i])  # type: ignore[arg-type,return-value]
    current = len(history) - 1
    # A rise from the best epoch is a difference of two noisy means, and the best is the lowest of
    # many draws (biased low): the band of a step, not of one value.
    band = step_band(noise_band(history[best:], "val_loss"))
    if _never_learnt(history, task, vals, band):  # type: ignore[arg-type]
        return None
    recent = vals[current - OVERFIT_PATIENCE + 1:]
    if recent[0] - recent[-1] > band.width:  # type: ignore[operator]
        return None  # validation is falling again beyond noise: recovering, not over-fitting
    score, effect = _risen(history, best, band)
    how, since_epoch = "rise", best
    stalled = _stalled_since(vals)  # type: ignore[arg-type]
    gap_score, gap_effect = _memorised(history, stalled)
    if gap_score > score and score < CLEAR:  # a clear rise tells the story best; else the gap, if stronger
        score, how, effect, since_epoch = gap_score, "gap", gap_effect, stalled
    if score < 1:
        return None
    severity = "info" if task.early_stopping_restores_best else graded(score)
    lead = (f"Train loss keeps falling ({losses[best]:.4g} → {losses[current]:.4g}) while validation loss rose from "
            f"{vals[best]:.4g} at epoch {history[best].epoch} to {vals[current]:.4g} ({effect})" if how == "rise" else
            f"Train loss fell to {losses[current]:.4g} against a validation loss of {vals[current]:.4g} ({effect}), "
            f"which has not improved by {MATERIAL:.0%} on epoch {history[since_epoch].epoch}'s "
            f"{vals[since_epoch]:.4g} for {current - since_epoch} epochs")
    return RuleResult(severity, (
        f"{lead}: the model memorizes the training set. The best epoch was {history[best].epoch}."), {
        "best_epoch": history[best].epoch, "best_val_loss": round(vals[best], 4), "val_loss": round(vals[current], 4),  # type: ignore[arg-type]
        "loss_at_best": round(losses[best], 4), "loss": round(losses[current], 4), "by": how,  # type: ignore[arg-type]
        "since_epoch": history[since_epoch].epoch,
        "accuracy": history[current].accuracy(), "val_accuracy": history[current].val_accuracy(),
        "noise": effect, "noise_band": float(f"{band.width:.3g}"), "n": band.n, "confidence": score})


def _risen(history: list[Epoch], best: int, band: Band) -> tuple[float, str]:
    """(confidence, description) of a validation loss that rose since its best epoch while the training
    loss fell: beyond the band of a step, or a steady climb. (0, description) when it has not."""
    vals, losses = series(history, "val_loss"), series(history, "loss")
    current = len(history) - 1
    rise = min(vals[current - OVERFIT_PATIENCE + 1:]) - vals[best]  # type: ignore[operator,type-var]
    effect = band.describe("val_loss", rise, vals[best])  # type: ignore[arg-type]
    if current - best < OVERFIT_PATIENCE or losses[current] >= losses[best] or rise < MATERIAL * vals[best]:  # type: ignore[operator]
        return 0.0, effect
    # Beyond the band of a step, or a steady climb since the best epoch: its trend (t statistic) through
    # the epochs after the best (the best itself is a low outlier), once the fitted line rose by a material
    # share (the same 3 % as a rise: on a fixed validation set the epochs move far less than its band, and
    # the trend is judged against their own scatter, so a slow climb of label-noise over-fitting shows).
    after = vals[best + 1:]
    # Re-tested after every epoch, a trend gets many looks: it takes t ≥ 4 (TREND_CLEAR bands) to be a warning.
    steady = trend(after) * CLEAR / TREND_CLEAR if fitted_fall(after) <= -MATERIAL * vals[best] else 0.0  # type: ignore[arg-type,operator]
    return max(confidence(rise, band), steady), effect


def _stalled_since(vals: list[float]) -> int:
    """The index from which the validation loss has not improved materially: the first epoch within
    ``MATERIAL`` of the lowest so far. A new lowest by less than that is not progress (the same 3 % that
    makes a rise worth a finding): waiting for the epochs after it would restart on every small dip."""
    lowest = min(vals)
    return next(i for i, v in enumerate(vals) if v <= lowest * (1 + MATERIAL))


def _memorised(history: list[Epoch], best: int) -> tuple[float, str]:
    """(confidence, description) of a memorisation gap: validation loss far above the training loss
    (or training accuracy near perfect, validation far below), a gap that grew since the validation
    loss stalled (``best``: see ``_stalled_since``) while training kept fitting beyond its noise. The
    confidence is the gap in noise bands. (0, "") when there is none."""
    last, at_best = history[-1], history[best]
    val, train = last.val_loss, last.loss
    if len(history) - 1 - best < MEMORISE_PATIENCE or val is None or train is None:
        return 0.0, ""
    accuracy, val_accuracy = last.accuracy(), last.val_accuracy()
    # With accuracies, memorisation is a near perfect training accuracy far above validation (a loss
    # ratio alone would call a healthy 1.0 against 0.97 overfit); without, the loss ratio.
    if accuracy is not None and val_accuracy is not None:
        far_apart = accuracy >= 0.98 and val_accuracy <= accuracy - 0.05
    else:
        far_apart = val >= MEMORISE_RATIO * train
    gap, gap_at_best = val - train, (at_best.val_loss or 0) - (at_best.loss or 0)
    # Growing: training kept fitting beyond its own noise since the best epoch while validation did not
    # improve. Not "validation moved beyond its band": on a fixed validation set successive epochs are far
    # more alike than two independent samples (a steady drift well inside the band is still a drift).
    fitting = (at_best.loss or 0) - train > noise_band(history[best:], "loss").width
    if not (fitting and far_apart and gap > gap_at_best):
        return 0.0, ""
    band = gap_band(history[best:])
    return confidence(gap, band), band.describe("val_loss - loss", gap, val).replace("moved", "is")
