"""``stuck_at_chance``: no better than a model that ignores its input (the label entropy for a
classifier, the constant predictor's loss for a regression), and its resolver."""

import math

from diagnosis.curves import Epoch, Task, as_evidence, reference_loss, series
from diagnosis.noise import CLEAR, Band, Z, confidence, graded, noise_band
from diagnosis.rules.common import RuleResult, fitted_fall

CHANCE_WINDOW = 3
CHANCE_ABOVE = 0.05  # "at or just above chance": up to 5 % above the reference level
ONE_CLASS = 0.95  # share of the probe's predictions in one class: the model predicts one class


def chance_tolerance(reference: float, task: Task) -> float:
    """How close to the reference level is "at chance": 2 % of it (a model 2 % better than a constant is
    useless), and half a hundredth of a nat more for a classifier."""
    return 0.02 * reference + (0.005 if task.classification else 0.0)


def beyond_majority(accuracy: float, majority: float, n: int) -> bool:
    """An accuracy above the majority rate beyond the binomial noise of ``n`` samples: the model tells
    classes apart, whatever its loss says (a few confidently wrong samples can keep a loss above chance)."""
    return accuracy > majority + Z * math.sqrt(majority * (1 - majority) / n)


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
    tolerance = chance_tolerance(reference, task)
    # At chance is a practical call (a model 2 % better than a constant is useless): the noise of the
    # epoch's mean widens it, but by at most twice the tolerance (the per-sample spread of a constant
    # predictor's losses is the targets' own spread, wide for a regression: it must not pass R² 0.2 as chance).
    floor = reference - max(tolerance, min(band.width, 2 * tolerance))
    ceiling = reference * (1 + CHANCE_ABOVE) + tolerance
    at_chance = all(floor <= loss <= ceiling for loss in losses)  # type: ignore[operator]
    # Not merely near chance but not moving: a slow starter is already trending down (the fitted fall over
    # the window beyond its noise), and the scatter stays within the noise.
    scatter = max(losses) - min(losses) <= max(tolerance, band.width)  # type: ignore[type-var,operator]
    still = scatter and fitted_fall(losses) <= max(tolerance / 4, band.width)  # type: ignore[arg-type]
    vals = [e.val_loss for e in tail] if task.has_validation else [None]
    if not still and scatter and None not in vals:
        # Validation decides whether it learnt anything: flat at chance while the training loss drifts
        # down a little is memorising labels it cannot predict (shuffled labels), not a slow start.
        val_band = noise_band(tail, "val_loss")
        still = (min(vals) >= floor and fitted_fall(vals) <= max(tolerance / 4, val_band.width)  # type: ignore[type-var,operator,arg-type]
                 and fitted_fall(losses) <= tolerance / 2)  # type: ignore[arg-type]
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
    tolerance = chance_tolerance(reference, task)
    floor = reference - max(tolerance, min(band.width, 2 * tolerance))
    recent = [float(v) for v in vals[-CHANCE_WINDOW:]]  # type: ignore[arg-type]
    # Sitting there: neither falling nor scattering beyond the noise (a loss thrown up and down is diverging's
    # or unstable's call, not stuck).
    sitting = max(recent) - min(recent) <= max(tolerance, band.width)
    if not (min(vals) >= floor and sitting and fitted_fall(recent) <= max(tolerance / 4, band.width)):  # type: ignore[type-var,operator]
        return False
    # A loss above the constant's can also be a few confidently wrong samples of a model that classifies
    # well (an overconfident one): where the accuracy is logged, it has to be the majority rate's too.
    accuracy, majority, n = tail[-1].val_accuracy(), task.val_majority_rate, tail[-1].n_val
    if accuracy is None or majority is None or not n:
        return True
    return not beyond_majority(accuracy, majority, n)


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
    val_still = min(vals) >= floor and fitted_fall(vals) <= max(tolerance / 4, noise_band(tail, "val_loss").width)
    return at_majority and val_still and fitted_fall(losses) <= noise_band(tail, "loss").width


def stuck_resolved(history: list[Epoch], task: Task) -> bool:
    loss, reference = history[-1].loss, reference_loss(task)
    return loss is not None and reference is not None and loss < 0.8 * reference
