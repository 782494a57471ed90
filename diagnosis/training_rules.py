"""The training-phase rules: each reads the history so far and says whether its
symptom is now clear. The monitor calls them after every epoch and raises
each code once, at the first epoch it holds as a warning.

Every rule that compares losses across epochs decides against the noise band of
those losses (diagnosis/noise.py): a move inside the band is not a finding. The
reverse does not hold: staying inside a wide band is no evidence of standing still,
so "flat" (plateau, stuck) is a fitted fall under 1 % that has to be seen. Each
result carries ``evidence["confidence"]``, the effect in noise bands; results
clear of the band (``noise.CLEAR``) are warnings, weaker ones info.
"""

import math
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from diagnosis.curves import Epoch, Task, as_evidence, reference_loss, series
from diagnosis.noise import (
    CLEAR,
    MAX_CONFIDENCE,
    Band,
    Z,
    batch_variation,
    confidence,
    gap_band,
    graded,
    noise_band,
    step_band,
    trend,
)


class RuleResult(NamedTuple):
    """What a rule concluded on the history so far (the final verdict is diagnosis/verdict.py)."""

    severity: str
    message: str
    evidence: dict


CHANCE_WINDOW = 3
CHANCE_ABOVE = 0.05  # "at or just above chance": up to 5 % above the reference level
SATURATED_SHARE = 0.9
ONE_CLASS = 0.95  # share of the probe's predictions in one class: the model predicts one class
OVERFIT_PATIENCE = 3
MEMORISE_PATIENCE = 4  # epochs without a better validation loss before a gap alone is overfitting
MEMORISE_RATIO = 3.0  # validation loss at least this many times the training loss (no accuracy logged)
LEARNT = 0.95  # a best validation loss below this share of the reference: the model learnt something
RECOVERING = 2.0  # train loss this many times its earlier minimum: recovering from a blow-up
TREND_CLEAR = 2.0
MATERIAL = 0.03  # smallest rise of the validation loss worth a finding, relative to its best
PLATEAU_WINDOW = 4
FLAT = 0.01
UNDERFIT = 0.9  # train loss at least this share of the validation loss: no generalization gap
UNSTABLE_WINDOW = 6
VANISHING_RATIO = 1e-3
EXPLODED = 1e6  # times the chance loss (or target variance)


def _key(task: Task) -> str:
    return "val_loss" if task.has_validation else "loss"


def _noise(band: Band, key: str, effect: float, level: float, score: float) -> dict:
    return {"noise": band.describe(key, effect, level), "noise_band": float(f"{band.width:.3g}"), "n": band.n,
            "confidence": score}


def diverging(history: list[Epoch], task: Task) -> RuleResult | None:
    last = history[-1]
    raw = last.logs.get("loss")
    if raw is not None and not math.isfinite(raw):
        return RuleResult("error", f"The loss became {raw} at epoch {last.epoch}: training diverged.", {
            "loss": None, "epoch": last.epoch, "confidence": MAX_CONFIDENCE})
    reference = reference_loss(task) or task.target_variance
    if raw is not None and reference and raw > EXPLODED * reference:
        return RuleResult("error", (
            f"The loss exploded to {raw:.3g} at epoch {last.epoch}, {raw / reference:.1e} times the reference level "
            f"{reference:.4g}: training diverged."), {
            "loss": float(f"{raw:.4g}"), "reference": round(reference, 4), "epoch": last.epoch,
            "confidence": round(min(MAX_CONFIDENCE, raw / (EXPLODED * reference)), 2)})
    if len(history) < 4 or not task.has_validation:
        return None
    tail = history[-4:]
    losses, vals = [e.loss for e in tail], [e.val_loss for e in tail]
    if None in losses or None in vals:
        return None
    # The training loss is what the optimizer minimises: three epochs of climbing, beyond its noise, to above
    # where it started and 1.5 times its lowest is divergence whatever validation does (a diverging run's
    # validation loss often bounces instead: waiting for it to climb too would only delay the finding).
    rising = all(b > a for a, b in pairwise(losses))  # type: ignore[operator]
    first = history[0].loss
    lowest = min(e.loss for e in history if e.loss is not None)
    if not (rising and first is not None and losses[-1] > first and losses[-1] > 1.5 * lowest):  # type: ignore[operator]
        return None
    train_band, val_band = noise_band(tail, "loss"), noise_band(tail, "val_loss")
    score = confidence(losses[-1] - losses[0], train_band)  # type: ignore[operator]
    both = all(b > a for a, b in pairwise(vals))  # type: ignore[operator]
    if both:  # validation climbing too: the weaker of the two rises decides
        score = min(score, confidence(vals[-1] - vals[0], val_band))  # type: ignore[operator]
    if score < 1:
        return None
    key, band, values = ("val_loss", val_band, vals) if both else ("loss", train_band, losses)
    return RuleResult("error" if score >= CLEAR else "info", (
        f"{'Train and validation loss have both' if both else 'Train loss has'} risen for 3 epochs, to "
        f"{losses[-1]:.4g} (lowest {lowest:.4g}), beyond {'their' if both else 'its'} noise "
        f"({band.describe(key, values[-1] - values[0], values[0])}): training is diverging."), {  # type: ignore[operator,arg-type]
        "loss": as_evidence(losses), "val_loss": as_evidence(vals), "lowest_loss": round(lowest, 4),
        **_noise(band, key, values[-1] - values[0], values[0], score)})  # type: ignore[operator,arg-type]


def stuck_at_chance(history: list[Epoch], task: Task) -> RuleResult | None:
    """At or just above the loss of the best constant predictor, not moving, accuracy at the majority rate.

    For a regression loss the reference is the constant predictor's loss (the target variance for
    mse): no better than a constant is the same symptom.
    """
    reference = reference_loss(task)
    if reference is None or reference <= 0 or len(history) < CHANCE_WINDOW:
        return None
    tail = history[-CHANCE_WINDOW:]
    losses = [e.loss for e in tail]
    if None in losses:
        return None
    band = noise_band(tail, "loss")
    tolerance = 0.02 * reference + (0.005 if task.classification else 0.0)
    # At chance is a practical call (a model 2 % better than a constant is useless): the noise of the
    # epoch's mean widens it, but by at most twice the tolerance (the per-sample spread of a constant
    # predictor's losses is the targets' own spread, wide for a regression: it must not pass R² 0.2 as chance).
    floor = reference - max(tolerance, min(band.width, 2 * tolerance))
    ceiling = reference * (1 + CHANCE_ABOVE) + tolerance
    at_chance = all(floor <= loss <= ceiling for loss in losses)  # type: ignore[operator]
    # Not merely near chance but not moving: a slow starter is already trending down (the fitted fall over
    # the window beyond its noise), and the scatter stays within the noise.
    scatter = max(losses) - min(losses) <= max(tolerance, band.width)  # type: ignore[type-var,operator]
    still = scatter and _fitted_fall(losses) <= max(tolerance / 4, band.width)  # type: ignore[arg-type]
    vals = [e.val_loss for e in tail] if task.has_validation else [None]
    if not still and scatter and None not in vals:
        # Validation decides whether it learnt anything: flat at chance while the training loss drifts
        # down a little is memorising labels it cannot predict (shuffled labels), not a slow start.
        val_band = noise_band(tail, "val_loss")
        still = (min(vals) >= floor and _fitted_fall(vals) <= max(tolerance / 4, val_band.width)  # type: ignore[type-var,operator,arg-type]
                 and _fitted_fall(losses) <= tolerance / 2)  # type: ignore[arg-type]
    accuracy = tail[-1].accuracy() if task.classification else None
    share = tail[-1].top_class_share
    at_majority = (accuracy is None or task.majority_rate is None or accuracy <= task.majority_rate + 0.03
                   or (share is not None and share >= ONE_CLASS))
    no_signal = _no_signal(tail, task, floor, tolerance)
    unseen = _none_on_unseen(history, task)
    if not ((at_chance and still and at_majority) or no_signal or unseen):
        return None
    # How sure: how still it sat, as how many times its movement fits into the tolerance (a movement
    # beyond the tolerance but inside the noise band is a weak result: info).
    score = confidence(tolerance, Band(max(losses) - min(losses), band.n))  # type: ignore[type-var,operator]
    if (share is not None and share >= ONE_CLASS) or no_signal or unseen:
        score = max(score, CLEAR)  # one predicted class, no signal, none on unseen data: evidence of its own
    if task.classification:
        what = "label entropy" if not task.multi_label else "mean per-label entropy"
        detail = (f"accuracy ({accuracy if accuracy is not None else 'n/a'}) is at the majority rate "
                  f"({task.majority_rate or 0:.3f})" + (f", {share:.0%} of the predictions are one class"
                                                        if share is not None and share >= ONE_CLASS else ""))
    else:
        what = "loss of predicting a constant"
        detail = "the model explains none of the target's variation" + (
            " (the targets look like labels: a classification loss fits them)" if task.label_like else "")
    return RuleResult(graded(score), (
        f"The loss has sat at {losses[-1]:.4f} for {CHANCE_WINDOW} epochs, at or just above the {what} "
        f"({reference:.4f}) of a model that ignores its input, and {detail}: the model is stuck at chance."), {
        "loss": round(losses[-1], 4), "chance_loss": round(reference, 4), "accuracy": accuracy,  # type: ignore[arg-type]
        "majority_rate": round(task.majority_rate or 0, 4), "val_accuracy": tail[-1].val_accuracy(),
        "top_class_share": None if share is None else round(share, 3), "losses": as_evidence(losses),
        "val_chance_loss": None if task.val_chance_loss is None else round(task.val_chance_loss, 4),
        "noise_band": float(f"{band.width:.3g}"), "n": band.n, "confidence": score})


def _none_on_unseen(history: list[Epoch], task: Task) -> bool:
    """Never better than a constant on unseen data: every validation loss so far at or above the loss of
    the best constant on the validation targets (their own label entropy or variance, less the tolerance
    and the noise of a mean), the last ``CHANCE_WINDOW`` neither falling nor scattering beyond their noise,
    and the validation accuracy (where logged) within binomial noise of the validation majority rate.

    The training loss may fall meanwhile: a model given labels or targets it cannot predict (shuffled)
    memorises its training part, down to well under the reference, and learns nothing that holds on
    data it has not seen. The validation split's own reference, not the training split's: a validation
    set whose targets happen to vary less would otherwise look like a model that learnt.
    """
    reference = task.val_chance_loss
    vals = series(history, "val_loss")
    if not task.has_validation or reference is None or reference <= 0 or len(history) < CHANCE_WINDOW \
            or None in vals:
        return False
    tail = history[-CHANCE_WINDOW:]
    band = noise_band(tail, "val_loss")
    tolerance = 0.02 * reference + (0.005 if task.classification else 0.0)
    floor = reference - max(tolerance, min(band.width, 2 * tolerance))
    recent = [float(v) for v in vals[-CHANCE_WINDOW:]]  # type: ignore[arg-type]
    # Sitting there: neither falling nor scattering beyond the noise (a loss thrown up and down is diverging's
    # or unstable's call, not stuck).
    sitting = max(recent) - min(recent) <= max(tolerance, band.width)
    if not (min(vals) >= floor and sitting and _fitted_fall(recent) <= max(tolerance / 4, band.width)):  # type: ignore[type-var,operator]
        return False
    # A loss above the constant's can also be a few confidently wrong samples of a model that classifies
    # well (an overconfident one): where the accuracy is logged, it has to be the majority rate's too.
    accuracy, majority, n = tail[-1].val_accuracy(), task.val_majority_rate, tail[-1].n_val
    if accuracy is None or majority is None or not n:
        return True
    return accuracy <= majority + Z * math.sqrt(majority * (1 - majority) / n)


def _no_signal(tail: list[Epoch], task: Task, floor: float, tolerance: float) -> bool:
    """The predictions carry nothing of the input, whatever the training loss's level: the training
    accuracy at the majority rate within its binomial noise at every epoch of the window, and the
    validation loss no better than chance and not falling, nor the training loss beyond its noise.

    A network killed by a huge learning rate outputs a constant that chases the class balance of the
    latest batches: its training loss wobbles a few percent either side of the label entropy (below it
    too, which a fixed constant cannot do), beyond the tolerance of "at chance", while its accuracy
    stays that of always answering the majority class. The loss level alone misses it; the accuracy
    and the unseen data do not.
    """
    majority, n = task.majority_rate, tail[-1].n_train
    raw = [(e.val_loss, e.accuracy(), e.loss) for e in tail]
    if not task.classification or task.multi_label or majority is None or not n \
            or any(None in r for r in raw):
        return False
    vals, accuracies, losses = ([float(r[i]) for r in raw] for i in range(3))  # type: ignore[arg-type]
    binomial = Z * math.sqrt(majority * (1 - majority) / n)
    at_majority = all(abs(a - majority) <= binomial for a in accuracies)
    val_still = min(vals) >= floor and _fitted_fall(vals) <= max(tolerance / 4, noise_band(tail, "val_loss").width)
    return at_majority and val_still and _fitted_fall(losses) <= noise_band(tail, "loss").width


def saturated_outputs(history: list[Epoch], task: Task) -> RuleResult | None:
    last = history[-1]
    if not task.classification or last.pinned_fraction is None or last.loss is None:
        return None
    reference = task.chance_loss or 0.7
    if last.pinned_fraction < SATURATED_SHARE or last.loss < 3 * reference:
        return None
    band = noise_band([last], "loss")
    score = confidence(last.loss - reference, band)
    # The probe's pinned outputs are the model at the epoch's end; so is the validation loss, a mean over fixed
    # samples whose band is sampling noise alone. The training loss's spread within an epoch that blew up is
    # the blow-up itself (one batch at 2e6 among batches at 10 put a band of ±3e5 around a loss of 1.5e5):
    # the validation loss, when it too is far above its reference, is the better measured witness.
    val_reference = task.val_chance_loss or reference
    if last.val_loss is not None and last.val_loss >= 3 * val_reference:
        val_band = noise_band([last], "val_loss")
        if (val_score := confidence(last.val_loss - val_reference, val_band)) > score:
            score, band = val_score, val_band
    return RuleResult(graded(score), (
        f"{last.pinned_fraction:.0%} of the predicted probabilities are pinned at 0 or 1 while the loss "
        f"({last.loss:.4g}) is far above the label entropy ({reference:.4f}): the outputs are saturated, "
        "confidently wrong, and their gradients are gone."), {
        "pinned_fraction": round(last.pinned_fraction, 4), "loss": round(last.loss, 4),
        "chance_loss": round(reference, 4), "noise_band": float(f"{band.width:.3g}"), "confidence": score})


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
    steady = trend(after) * CLEAR / TREND_CLEAR if _fitted_fall(after) <= -MATERIAL * vals[best] else 0.0  # type: ignore[arg-type,operator]
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


def _not_improving(window: list[Epoch], key: str) -> float | None:
    """How flat, as (1 % of the level / fitted fall over the window): ≥ 1 when the least-squares line
    through the values falls by at most 1 % while their scatter stays inside the noise band.

    The fitted fall, not the range: a level with noisy epochs (a batch-noisy regression) is flat, a
    steady 2 % an epoch on a small validation set is a slow learner, not a plateau, however wide its band.
    """
    values = [e.get(key) for e in window]
    if None in values:
        return None
    level = max(abs(v) for v in values)  # type: ignore[arg-type]
    if max(values) - min(values) > max(noise_band(window, key).width, FLAT * level):  # type: ignore[type-var,operator]
        return None  # bouncing beyond noise: unstable's call, not a plateau
    return confidence(FLAT * level, Band(max(_fitted_fall(values), 0.0), None))  # type: ignore[arg-type]


def _fitted_fall(values: list[float]) -> float:
    """How far the least-squares line through the values falls from the first epoch to the last."""
    slope = float(np.polyfit(np.arange(len(values)), np.array(values, dtype=float), 1)[0])
    return -slope * (len(values) - 1)


def plateau(history: list[Epoch], task: Task) -> RuleResult | None:
    """Neither loss improving, the model fitting its training data no better than unseen data
    (under-fitting, not a generalization limit), well above the reference level and short of good."""
    if len(history) < PLATEAU_WINDOW + 2:
        return None
    tail = history[-PLATEAU_WINDOW:]
    losses = [e.loss for e in tail]
    key = _key(task)
    vals = [e.get(key) for e in tail]
    train_flat, val_flat = _not_improving(tail, "loss"), _not_improving(tail, key)
    if train_flat is None or val_flat is None or min(train_flat, val_flat) < 1:
        return None
    if task.has_validation and losses[-1] < UNDERFIT * vals[-1]:  # type: ignore[operator]
        return None  # fits its training data clearly better: capacity is not what holds it (a converged model)
    reference = reference_loss(task)
    if reference and abs(losses[-1] - reference) <= 0.05 * reference:  # type: ignore[operator]
        return None  # at the reference level: stuck_at_chance, not a plateau
    if task.classification:
        accuracy = tail[-1].accuracy()
        if accuracy is None or accuracy >= 0.9:
            return None
        level = f"accuracy {accuracy:.3f}"
    else:
        if not task.target_variance or task.loss != "mean_squared_error" or losses[-1] < 0.5 * task.target_variance:  # type: ignore[operator]
            return None
        level = f"mse {losses[-1]:.4g} against a target variance of {task.target_variance:.4g}"
    score = min(train_flat, val_flat)
    return RuleResult(graded(score), (
        f"Train and validation loss have not improved for {PLATEAU_WINDOW} epochs (a fitted fall under 1 %, "
        f"scatter within noise) at {level}, no better on the training data than on unseen data: the model "
        "under-fits, stuck on a plateau."), {
        "loss": as_evidence(losses), "val_loss": as_evidence(vals), "target_variance": task.target_variance,
        "confidence": score})


def unstable(history: list[Epoch], task: Task) -> RuleResult | None:
    """The loss bounces up and down by more than its noise: not a noisy descent, not sampling noise.

    Two ways to see it: the watched loss alternating epoch after epoch (reversals whose mean step
    is beyond the band), or a spike, in the training or the validation loss: a rise beyond the band
    of a step, undone by a fall beyond it within the window. A healthy loss does not climb beyond
    its noise and come back; an optimizer whose steps are too large throws the model off (a loss
    several times its level for an epoch) and it falls back. The training loss is a witness of its
    own: a full pass over the training set, where a heavy-tailed handful of samples cannot make a
    wide validation band hide the jump.
    """
    if len(history) < UNSTABLE_WINDOW:
        return None
    key = _key(task)
    window = history[-UNSTABLE_WINDOW:]
    found = [r for r in (_alternating(window, key), _spike(window, key),
                         _spike(window, "loss") if key != "loss" else None) if r is not None]
    if not found:
        return None
    score, what, band, effect, level, name = max(found, key=lambda r: r[0])
    if score < 1:
        return None
    # A validation curve bouncing while training climbs nowhere is most likely the noise of a small
    # validation set (its band is only an estimate): below twice the warning level it needs the
    # training loss to have climbed beyond its own noise too.
    if name == "val_loss" and score < 2 * CLEAR and not _climbed(window):
        score = min(score, round(CLEAR - 0.01, 2))
    values = series(window, name)
    variation = batch_variation(history[-1])
    return RuleResult(graded(score), f"The {name} {what}: training is unstable.", {
        name: as_evidence(values), "mean_step": round(effect / level, 3),  # type: ignore[arg-type]
        "batch_loss_variation": None if variation is None else round(variation, 3),
        **_noise(band, name, effect, level, score)})


_Bounce = tuple[float, str, Band, float, float, str]  # (score, what it did, band, effect, level, key)


def _alternating(window: list[Epoch], key: str) -> _Bounce | None:
    """Reversals epoch after epoch whose mean step is beyond the band of a step."""
    values = series(window, key)
    if None in values:
        return None
    level = sum(values) / len(values)  # type: ignore[arg-type]
    if level <= 0:
        return None
    steps = [b - a for a, b in pairwise(values)]  # type: ignore[operator]
    flips = sum(1 for a, b in pairwise(steps) if a * b < 0)
    ups, downs = sum(s for s in steps if s > 0), -sum(s for s in steps if s < 0)
    # Bouncing, not a noisy descent: the climbs undo at least half of the falls.
    if flips < 3 or ups < 0.5 * downs:
        return None
    amplitude = sum(abs(s) for s in steps) / len(steps)
    band = step_band(noise_band(window, key))
    return (confidence(amplitude, band), f"jumps up and down from epoch to epoch ({flips} reversals in "
            f"{len(window)} epochs; {band.describe(key, amplitude, level)} per epoch)", band, amplitude, level, key)


def _spike(window: list[Epoch], key: str) -> _Bounce | None:
    """A climb beyond the band of a step to above every earlier epoch of the window (all the progress the
    window shows undone: an uptick of a noisy descent is not), then a fall beyond the band: the largest
    up-and-down again in the window. The climb is measured from the lowest epoch before the peak, in one
    step or several (a loss thrown off over a few epochs and then back is as unstable as one that jumps in
    one: the difference of any two epochs' means has the band of a step). Its strength is the smaller of
    the two moves (a rise that stays is a trend, not a bounce), in bands."""
    logged = series(window, key)
    if None in logged:
        return None
    values = [float(v) for v in logged]  # type: ignore[arg-type]
    band = step_band(noise_band(window, key))
    best: _Bounce | None = None
    for i in range(1, len(values)):
        rise = values[i] - min(values[:i])
        if rise <= band.width or values[i] <= max(values[:i]):
            continue
        fall = values[i] - min(values[i + 1:], default=values[i])
        score = min(confidence(rise, band), confidence(fall, band))
        if fall > band.width and (best is None or score > best[0]):
            level = max(min(values[:i]), 1e-12)
            best = (score, f"rose {values[i] / level:.1f}-fold at epoch {window[i].epoch} and fell back "
                    f"({band.describe(key, rise, level)} for the rise)", band, rise, level, key)
    return best


def _climbed(window: list[Epoch]) -> bool:
    losses = [e.loss for e in window]
    if None in losses:
        return False
    band = step_band(noise_band(window, "loss"))
    return any(b - a > band.width for a, b in pairwise(losses))  # type: ignore[operator]


def vanishing_gradients(history: list[Epoch], task: Task) -> RuleResult | None:
    recent = [e.gradient_norms for e in history[-2:]]
    if len(recent) < 2 or any(not norms or len(norms) < 3 for norms in recent):
        return None
    ratios = [norms[0] / max(norms[-1], 1e-30) for norms in recent]  # type: ignore[index]
    if max(ratios) >= VANISHING_RATIO:
        return None
    norms = recent[-1]
    score = round(min(MAX_CONFIDENCE, VANISHING_RATIO / max(max(ratios), 1e-30)), 2)
    return RuleResult(graded(score), (
        f"The gradient reaching the first layer is {ratios[-1]:.1e} of the last layer's: the early layers barely "
        "learn (vanishing gradients)."), {
        "gradient_norms": [float(f"{n:.3g}") for n in norms],  # type: ignore[union-attr]
        "first_to_last_ratio": float(f"{ratios[-1]:.3g}"), "confidence": score})


def stuck_resolved(history: list[Epoch], task: Task) -> bool:
    loss, reference = history[-1].loss, reference_loss(task)
    return loss is not None and reference is not None and loss < 0.8 * reference


def saturation_resolved(history: list[Epoch], task: Task) -> bool:
    last = history[-1]
    reference = task.chance_loss or 0.7
    return last.loss is not None and last.loss < reference and (last.pinned_fraction or 0) < SATURATED_SHARE


def plateau_resolved(history: list[Epoch], task: Task) -> bool:
    losses = [e.loss for e in history[-PLATEAU_WINDOW - 1:]]
    return None not in losses and losses[-1] < 0.9 * min(losses[:-1])  # type: ignore[operator,type-var]
