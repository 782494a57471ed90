"""``plateau``: neither loss improving, under-fitting well above the reference level, and its resolver.

Staying inside a wide noise band is no evidence of standing still, so "flat" is a fitted fall under
1 % that has to be seen."""

from diagnosis.curves import Epoch, Task, as_evidence, reference_loss
from diagnosis.noise import Band, confidence, graded, noise_band
from diagnosis.rules.common import RuleResult, fitted_fall, watched_key

PLATEAU_WINDOW = 4
FLAT = 0.01
UNDERFIT = 0.9  # train loss at least this share of the validation loss: no generalization gap


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
    return confidence(FLAT * level, Band(max(fitted_fall(values), 0.0), None))  # type: ignore[arg-type]


def plateau(history: list[Epoch], task: Task) -> RuleResult | None:
    """Neither loss improving, the model fitting its training data no better than unseen data
    (under-fitting, not a generalization limit), well above the reference level and short of good."""
    if len(history) < PLATEAU_WINDOW + 2:
        return None
    tail = history[-PLATEAU_WINDOW:]
    losses = [e.loss for e in tail]
    key = watched_key(task)
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


def plateau_resolved(history: list[Epoch], task: Task) -> bool:
    losses = [e.loss for e in history[-PLATEAU_WINDOW - 1:]]
    return None not in losses and losses[-1] < 0.9 * min(losses[:-1])  # type: ignore[operator,type-var]
