"""``saturated_outputs``: predicted probabilities pinned at 0 or 1 while the loss is far above chance,
and its resolver."""

from diagnosis.curves import Epoch, Task
from diagnosis.noise import confidence, graded, noise_band
from diagnosis.rules.common import SATURATED_SHARE, RuleResult


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


def saturation_resolved(history: list[Epoch], task: Task) -> bool:
    last = history[-1]
    reference = task.chance_loss or 0.7
    return last.loss is not None and last.loss < reference and (last.pinned_fraction or 0) < SATURATED_SHARE
