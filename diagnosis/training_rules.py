"""The training-phase rules: each reads the history so far and says whether its
symptom is now clear. The monitor calls them after every epoch and raises
each code once, at the first epoch it holds."""

import math

from diagnosis.curves import Epoch, Task, as_evidence, rel_change, series

# Each rule returns (severity, message, evidence) when its symptom is clear, else None.
Verdict = tuple[str, str, dict] | None
CHANCE_WINDOW = 3
SATURATED_SHARE = 0.9
OVERFIT_PATIENCE = 3
PLATEAU_WINDOW = 4
FLAT = 0.01
UNSTABLE_WINDOW = 6
VANISHING_RATIO = 1e-3
EXPLODED = 1e6  # times the chance loss (or target variance)


def diverging(history: list[Epoch], task: Task) -> Verdict:
    last = history[-1]
    raw = last.logs.get("loss")
    if raw is not None and not math.isfinite(raw):
        return "error", f"The loss became {raw} at epoch {last.epoch}: training diverged.", {"loss": None, "epoch": last.epoch}
    reference = task.chance_loss or task.target_variance
    if raw is not None and reference and raw > EXPLODED * reference:
        return "error", (f"The loss exploded to {raw:.3g} at epoch {last.epoch}, {raw / reference:.1e} times the "
                         f"reference level {reference:.4g}: training diverged."), {
            "loss": float(f"{raw:.4g}"), "reference": round(reference, 4), "epoch": last.epoch}
    if len(history) < 4 or not task.has_validation:
        return None
    tail = history[-4:]
    losses, vals = [e.loss for e in tail], [e.val_loss for e in tail]
    if None in losses or None in vals:
        return None
    rising = all(b > a for a, b in zip(losses, losses[1:])) and all(b > a for a, b in zip(vals, vals[1:]))
    first = history[0].loss
    lowest = min(e.loss for e in history if e.loss is not None)
    if rising and first is not None and losses[-1] > first and losses[-1] > 1.5 * lowest:
        return "error", (f"Train and validation loss have both risen for 3 epochs, to {losses[-1]:.4g} "
                         f"(lowest {lowest:.4g}): training is diverging."), {
            "loss": as_evidence(losses), "val_loss": as_evidence(vals), "lowest_loss": round(lowest, 4)}
    return None


def stuck_at_chance(history: list[Epoch], task: Task) -> Verdict:
    if not task.classification or task.chance_loss is None or len(history) < CHANCE_WINDOW:
        return None
    tail = history[-CHANCE_WINDOW:]
    losses = [e.loss for e in tail]
    if None in losses:
        return None
    tolerance = 0.02 * task.chance_loss + 0.005
    at_chance = all(abs(loss - task.chance_loss) <= tolerance for loss in losses)
    # Not merely near chance but not moving: a slow starter is already trending down.
    still = max(losses) - min(losses) <= tolerance and losses[0] - losses[-1] <= tolerance / 4
    accuracy = tail[-1].accuracy()
    at_majority = accuracy is None or task.majority_rate is None or accuracy <= task.majority_rate + 0.03
    if not (at_chance and still and at_majority):
        return None
    return "warning", (
        f"The loss has sat at {losses[-1]:.4f} for {CHANCE_WINDOW} epochs, the label entropy ({task.chance_loss:.4f}) "
        f"of a model that ignores its input, and accuracy ({accuracy if accuracy is not None else 'n/a'}) is at the "
        f"majority rate ({task.majority_rate:.3f}): the model is stuck at chance."), {
        "loss": round(losses[-1], 4), "chance_loss": round(task.chance_loss, 4), "accuracy": accuracy,
        "majority_rate": round(task.majority_rate or 0, 4), "val_accuracy": tail[-1].val_accuracy(),
        "losses": as_evidence(losses)}


def saturated_outputs(history: list[Epoch], task: Task) -> Verdict:
    last = history[-1]
    if not task.classification or last.pinned_fraction is None or last.loss is None:
        return None
    reference = task.chance_loss or 0.7
    if last.pinned_fraction < SATURATED_SHARE or last.loss < 3 * reference:
        return None
    return "warning", (
        f"{last.pinned_fraction:.0%} of the predicted probabilities are pinned at 0 or 1 while the loss "
        f"({last.loss:.4g}) is far above the label entropy ({reference:.4f}): the outputs are saturated, "
        "confidently wrong, and their gradients are gone."), {
        "pinned_fraction": round(last.pinned_fraction, 4), "loss": round(last.loss, 4), "chance_loss": round(reference, 4)}


def overfitting(history: list[Epoch], task: Task) -> Verdict:
    vals = series(history, "val_loss")
    if not task.has_validation or None in vals or len(history) < OVERFIT_PATIENCE + 1:
        return None
    best = min(range(len(vals)), key=lambda i: vals[i])
    current = len(history) - 1
    losses = series(history, "loss")
    if current - best < OVERFIT_PATIENCE or losses[current] is None or losses[best] is None:
        return None
    # Clearly above the best for several epochs in a row, not one noisy validation epoch.
    recent = vals[current - OVERFIT_PATIENCE + 1:]
    if any(v < vals[best] * 1.1 + 0.01 for v in recent) or losses[current] >= losses[best]:
        return None
    severity = "info" if task.early_stopping_restores_best else "warning"
    return severity, (
        f"Train loss keeps falling ({losses[best]:.4g} → {losses[current]:.4g}) while validation loss rose from "
        f"{vals[best]:.4g} at epoch {history[best].epoch} to {vals[current]:.4g}: the model memorizes the training set. "
        f"The best epoch was {history[best].epoch}."), {
        "best_epoch": history[best].epoch, "best_val_loss": round(vals[best], 4), "val_loss": round(vals[current], 4),
        "loss_at_best": round(losses[best], 4), "loss": round(losses[current], 4)}


def _flat(values: list[float | None]) -> bool:
    return None not in values and rel_change(min(values), max(values)) < FLAT  # type: ignore[type-var]


def plateau(history: list[Epoch], task: Task) -> Verdict:
    if len(history) < PLATEAU_WINDOW + 2:
        return None
    tail = history[-PLATEAU_WINDOW:]
    losses = [e.loss for e in tail]
    vals = [e.val_loss for e in tail] if task.has_validation else losses
    if not (_flat(losses) and _flat(vals)):
        return None
    if task.classification:
        accuracy = tail[-1].accuracy()
        if accuracy is None or accuracy >= 0.9:
            return None
        if task.chance_loss and abs(losses[-1] - task.chance_loss) <= 0.05 * task.chance_loss:  # type: ignore[operator]
            return None  # at chance level: stuck_at_chance, not a plateau
        level = f"accuracy {accuracy:.3f}"
    else:
        if not task.target_variance or task.loss != "mean_squared_error" or losses[-1] < 0.3 * task.target_variance:
            return None
        level = f"mse {losses[-1]:.4g} against a target variance of {task.target_variance:.4g}"
    return "warning", (
        f"Train and validation loss have been flat for {PLATEAU_WINDOW} epochs at {level}, well above what the data "
        "allows: training is stuck on a plateau."), {
        "loss": as_evidence(losses), "val_loss": as_evidence(vals), "target_variance": task.target_variance}


def unstable(history: list[Epoch], task: Task) -> Verdict:
    if len(history) < UNSTABLE_WINDOW:
        return None
    key = "val_loss" if task.has_validation else "loss"
    values = series(history[-UNSTABLE_WINDOW:], key)
    if None in values:
        return None
    level = sum(values) / len(values)  # type: ignore[arg-type]
    if level <= 0:
        return None
    steps = [b - a for a, b in zip(values, values[1:])]  # type: ignore[operator]
    flips = sum(1 for a, b in zip(steps, steps[1:]) if a * b < 0)
    amplitude = sum(abs(s) for s in steps) / len(steps) / level
    ups, downs = sum(s for s in steps if s > 0), -sum(s for s in steps if s < 0)
    # Bouncing, not a noisy descent: the climbs undo at least half of the falls.
    if flips < 3 or amplitude < 0.15 or ups < 0.5 * downs:
        return None
    variation = history[-1].batch_variation()
    return "warning", (
        f"The {key} jumps up and down from epoch to epoch ({flips} reversals in {UNSTABLE_WINDOW} epochs, mean step "
        f"{amplitude:.0%} of its level): training is unstable."), {
        key: as_evidence(values), "reversals": flips, "mean_step": round(amplitude, 3),
        "batch_loss_variation": None if variation is None else round(variation, 3)}


def vanishing_gradients(history: list[Epoch], task: Task) -> Verdict:
    recent = [e.gradient_norms for e in history[-2:]]
    if len(recent) < 2 or any(not norms or len(norms) < 3 for norms in recent):
        return None
    ratios = [norms[0] / max(norms[-1], 1e-30) for norms in recent]  # type: ignore[index]
    if max(ratios) >= VANISHING_RATIO:
        return None
    norms = recent[-1]
    return "warning", (
        f"The gradient reaching the first layer is {ratios[-1]:.1e} of the last layer's: the early layers barely "
        "learn (vanishing gradients)."), {
        "gradient_norms": [float(f"{n:.3g}") for n in norms], "first_to_last_ratio": float(f"{ratios[-1]:.3g}")}  # type: ignore[union-attr]


def stuck_resolved(history: list[Epoch], task: Task) -> bool:
    loss = history[-1].loss
    return loss is not None and task.chance_loss is not None and loss < 0.8 * task.chance_loss


def saturation_resolved(history: list[Epoch], task: Task) -> bool:
    last = history[-1]
    reference = task.chance_loss or 0.7
    return last.loss is not None and last.loss < reference and (last.pinned_fraction or 0) < SATURATED_SHARE


def plateau_resolved(history: list[Epoch], task: Task) -> bool:
    losses = [e.loss for e in history[-PLATEAU_WINDOW - 1:]]
    return None not in losses and losses[-1] < 0.9 * min(losses[:-1])  # type: ignore[operator,type-var]
