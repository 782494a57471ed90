"""Batch size and learning rate far from what trains."""

from typing import Any

from diagnosis.facts import SpecView, keras_name, snake
from diagnosis.patches import patch_from
from models.findings import Code, Finding, Suggestion

# (usual low, usual high, Keras default) per optimizer; outside [low/10, high*5] is "far".
USUAL_LR = {
    "adam": (1e-5, 1e-2, 1e-3), "adamw": (1e-5, 1e-2, 1e-3), "nadam": (1e-5, 1e-2, 1e-3),
    "adamax": (1e-5, 1e-2, 1e-3), "rmsprop": (1e-5, 1e-2, 1e-3), "lion": (1e-6, 1e-3, 1e-3),
    "adafactor": (1e-5, 1e-2, 1e-3), "sgd": (1e-4, 0.3, 1e-2), "adagrad": (1e-4, 0.3, 1e-3),
    "adadelta": (1e-4, 2.0, 1e-3), "ftrl": (1e-4, 0.3, 1e-3), "lamb": (1e-5, 1e-2, 1e-3),
}
TINY_BATCH = 4


def tiny_batch(view: SpecView) -> list[Finding]:
    size = view.spec["fit"]["batch_size"]
    if size > TINY_BATCH:
        return []
    return [Finding(
        code=Code.tiny_batch, severity="warning", phase="preflight",
        message=f"A batch of {size} gives very noisy gradient estimates: the loss jumps around and results vary "
                "from run to run.",
        evidence={"batch_size": size},
        suggestions=[Suggestion(summary="batch size 32",
                                patch=patch_from(view.spec, lambda s: s["fit"].update(batch_size=32)))])]


def learning_rate_extreme(view: SpecView) -> list[Finding]:
    name, args = keras_name(view.spec["compile"]["optimizer"])
    key = snake(name).replace("_", "")
    if key not in USUAL_LR or not isinstance(args.get("learning_rate"), (int, float)):
        return []
    rate = float(args["learning_rate"])
    low, high, default = USUAL_LR[key]
    if low / 10 <= rate <= high * 5:
        return []

    def fix(spec: dict[str, Any]) -> None:
        spec["compile"]["optimizer"]["learning_rate"] = default

    direction = "high" if rate > high else "low"
    return [Finding(
        code=Code.learning_rate_extreme, severity="warning", phase="preflight",
        message=f"A learning rate of {rate:g} is far {direction} for {name} (usual range {low:g} to {high:g}): "
                + ("steps overshoot and outputs saturate or diverge." if direction == "high"
                   else "training will barely move."),
        evidence={"optimizer": name, "learning_rate": rate, "usual_range": [low, high]},
        suggestions=[Suggestion(summary=f"learning rate {default:g} (the Keras default for {name})",
                                patch=patch_from(view.spec, fix))])]
