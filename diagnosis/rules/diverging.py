"""``diverging``: the loss became non-finite or exploded, or the training loss climbed beyond its noise."""

import math
from itertools import pairwise

from diagnosis.curves import Epoch, Task, as_evidence, reference_loss
from diagnosis.noise import CLEAR, MAX_CONFIDENCE, confidence, noise_band
from diagnosis.rules.common import RuleResult, noise_evidence

EXPLODED = 1e6  # times the chance loss (or target variance)


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
        **noise_evidence(band, key, values[-1] - values[0], values[0], score)})  # type: ignore[operator,arg-type]
