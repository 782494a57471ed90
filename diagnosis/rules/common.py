"""What every training rule shares: the result it returns, the watched loss, the noise evidence, the
fitted fall of a curve."""

from typing import NamedTuple

import numpy as np

from diagnosis.curves import Task
from diagnosis.noise import Band


class RuleResult(NamedTuple):
    """What a rule concluded on the history so far (the final verdict is diagnosis/verdict.py)."""

    severity: str
    message: str
    evidence: dict


def watched_key(task: Task) -> str:
    """The loss the rules watch: the validation loss where there is one."""
    return "val_loss" if task.has_validation else "loss"


def noise_evidence(band: Band, key: str, effect: float, level: float, score: float) -> dict:
    return {"noise": band.describe(key, effect, level), "noise_band": float(f"{band.width:.3g}"), "n": band.n,
            "confidence": score}


def fitted_fall(values: list[float]) -> float:
    """How far the least-squares line through the values falls from the first epoch to the last."""
    slope = float(np.polyfit(np.arange(len(values)), np.array(values, dtype=float), 1)[0])
    return -slope * (len(values) - 1)


SATURATED_SHARE = 0.9  # share of the probe's outputs pinned at 0 or 1: saturated (two rules read it)
