"""``vanishing_gradients``: the first layer's gradient a tiny share of the last layer's."""

from diagnosis.curves import Epoch, Task
from diagnosis.noise import MAX_CONFIDENCE, graded
from diagnosis.rules.common import RuleResult

VANISHING_RATIO = 1e-3


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
