"""The final verdict: one line on how the run went, read like the user stories' table.

| train loss | val loss | meaning |
| falling | falling | still learning |
| falling | flat or rising | overfitting |
| flat | falling | something is wrong with the data |
| flat | flat | stuck |
| rising | rising | diverged |

"Falling" and "flat" are decided against the noise of the losses (diagnosis/noise.py):
a curve converged when its last epochs moved less than their noise band, not when
one step was small. A job that learnt is offered nothing that could undo what works:
only more epochs while it is still learning.
"""

from itertools import pairwise
from typing import Any

from diagnosis.curves import Epoch, Task, reference_loss
from diagnosis.noise import noise_band
from diagnosis.suggest import more_epochs
from models.findings import VERDICT_BY_CODE, Code, Finding, Suggestion

BY_CODE = VERDICT_BY_CODE  # (code, verdict), most decisive first: derived from models.findings.CODES
MEANING = {
    "learning": "still learning: the loss was still falling beyond its noise at the end, more epochs would help",
    "converged": "converged: the losses have levelled off within their noise",
    "overfitting": "overfitting: the training loss fell while the validation loss rose",
    "not_learning": "not learning: the model never got past what ignoring the input gives",
    "diverged": "diverged: the loss blew up",
    "data_problem": "a data problem: the validation data does not look like the training data",
    "plateau": "stuck on a plateau well above what the data allows",
}
TAIL = 3
MATERIAL = 0.01  # a fall smaller than 1 % of the level is flat, however precise the measurement
JUMP = 3.0  # the last epoch's loss this many times the lowest before it: it blew up at the end


def _key(task: Task) -> str:
    return "val_loss" if task.has_validation else "loss"


def _falling(history: list[Epoch], key: str) -> bool:
    """Fell beyond its noise band (and by at least 1 %) over the last epochs."""
    values = [e.get(key) for e in history[-TAIL:]]
    if len(values) < 2 or values[0] is None or values[-1] is None:
        return False
    drop = values[0] - values[-1]
    return drop > noise_band(history[-TAIL:], key).width and drop > MATERIAL * abs(values[0])


def _steadily_falling(history: list[Epoch], key: str) -> bool:
    """Down at every one of the last epochs: a trend, even where each step is inside the noise."""
    values = [e.get(key) for e in history[-TAIL:]]
    return len(values) == TAIL and None not in values and all(b < a for a, b in pairwise(values))  # type: ignore[operator]


def _flat(history: list[Epoch], key: str) -> bool:
    """Seen to be flat (within 1 %): staying inside a wide noise band is no evidence of it."""
    values = [e.get(key) for e in history[-TAIL:]]
    if len(values) < TAIL or None in values:
        return False
    return max(values) - min(values) <= MATERIAL * abs(values[-1])  # type: ignore[type-var,operator,arg-type]


def _from_curves(history: list[Epoch], task: Task) -> str:
    key = _key(task)
    if task.has_validation and len(history) >= TAIL and _falling(history, key) and _flat(history, "loss"):
        return "data_problem"
    still = _falling(history, key) or (_steadily_falling(history, key) and _steadily_falling(history, "loss"))
    return "learning" if still else "converged"


def last_jump(history: list[Epoch]) -> tuple[str, float] | None:
    """(key, factor) when the last epoch's loss jumped far above the lowest before it, beyond noise."""
    if len(history) < 2:
        return None
    for key in ("val_loss", "loss"):
        last = history[-1].get(key)
        earlier = [v for v in (e.get(key) for e in history[:-1]) if v is not None]
        if last is None or not earlier or min(earlier) <= 0:
            continue
        lowest = min(earlier)
        if last > JUMP * lowest and last - lowest > noise_band(history, key).width:
            return key, last / lowest
    return None


def _best(history: list[Epoch], task: Task) -> Epoch | None:
    key = _key(task)
    scored = [e for e in history if e.get(key) is not None]
    return min(scored, key=lambda e: e.get(key)) if scored else None  # type: ignore[arg-type,return-value]


def explained(history: list[Epoch], task: Task, best: Epoch | None) -> tuple[str, dict[str, Any]]:
    """A regression's share of the constant predictor's loss that the model removed: R² for mse."""
    reference = reference_loss(task)
    if task.classification or not reference or best is None or best.get(_key(task)) is None:
        return "", {}
    share = 1 - best.get(_key(task)) / reference  # type: ignore[operator]
    where = "on validation" if task.has_validation else "on training"
    if task.loss == "mean_squared_error":
        text, by = f" It explains {share:.0%} of the target variance (R² {share:.2f} {where}, best epoch).", "r2"
    else:
        text = f" It removes {share:.0%} of the loss of predicting a constant ({task.loss} {where}, best epoch)."
        by = "loss_reduction"
    return text, {"explained_variance": round(share, 3), "explained_by": by}


def _suggestions(verdict: str, learnt: bool, source: dict[str, Any] | None, spec: dict[str, Any],
                 preflight_fix: Suggestion | None) -> list[Suggestion]:
    if learnt and source is None:
        return [more_epochs(spec)] if verdict == "learning" else []
    offered = [Suggestion.model_validate(s) for s in (source or {}).get("suggestions", [])]
    if learnt and preflight_fix is not None:  # it learnt with these causes: fixing them may undo what works
        offered = [s for s in offered if s.patch != preflight_fix.patch]
    return offered


def final_verdict(history: list[Epoch], task: Task, findings: list[dict[str, Any]], spec: dict[str, Any],
                  preflight_fix: Suggestion | None = None) -> Finding:
    """Args:
        preflight_fix: the combined fix of the preflight warnings; never offered to a job that
            learnt (story 1: it produced a job that did not).
    """
    codes = {f["code"]: f for f in findings if f["severity"] != "info"}
    verdict, source = None, None
    for code, name in BY_CODE:
        if code.value in codes:
            verdict, source = name, codes[code.value]
            break
    unstable = codes.get(Code.unstable.value)
    # With restore_best_weights the model kept is the best epoch's: a blow-up at the end did not reach it.
    jump = None if task.early_stopping_restores_best else last_jump(history)
    if verdict is None and jump is not None:
        verdict, source = "diverged", unstable
    if verdict is None:
        verdict = _from_curves(history, task)
    if unstable is not None and source is None:
        source = unstable  # the verdict's name comes from the curves; its warning and fixes from the instability
    best = _best(history, task)
    learnt = verdict in ("learning", "converged", "overfitting")
    healthy = verdict in ("learning", "converged") and unstable is None
    message = f"Verdict: {MEANING[verdict]}."
    if jump is not None and verdict == "diverged" and Code.diverging.value not in codes:
        message = (f"Verdict: diverged at the end: the last epoch's {jump[0]} jumped {jump[1]:.0f}× above its lowest, "
                   "so the final weights are not the ones to keep.")
    if unstable is not None:
        message += " Training was unstable: results will vary from run to run."
    if best:
        message += f" Best epoch: {best.epoch}."
    text, fit = explained(history, task, best)
    return Finding(
        code=Code.verdict, severity="info" if healthy else "warning", phase="final",
        epoch=history[-1].epoch if history else None, message=message + text,
        evidence={"verdict": verdict, "best_epoch": best.epoch if best else None,
                  "best": {k: round(v, 4) for k, v in best.logs.items() if v is not None} if best else None,
                  "epochs_run": len(history), "from": source["code"] if source else None,
                  "chance_loss": None if task.chance_loss is None else round(task.chance_loss, 4),
                  "majority_rate": None if task.majority_rate is None else round(task.majority_rate, 4),
                  "target_variance": None if task.target_variance is None else round(task.target_variance, 4),
                  "last_jump": None if jump is None else round(jump[1], 1), **fit},
        suggestions=_suggestions(verdict, learnt, source, spec, preflight_fix))
