"""``unstable``: the loss bouncing beyond its noise, epoch after epoch or in a spike."""

from itertools import pairwise

from diagnosis.curves import Epoch, Task, as_evidence, series
from diagnosis.noise import CLEAR, Band, batch_variation, confidence, graded, noise_band, step_band
from diagnosis.rules.common import RuleResult, noise_evidence, watched_key

UNSTABLE_WINDOW = 6


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
    key = watched_key(task)
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
        **noise_evidence(band, name, effect, level, score)})


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
