"""The final verdict: one line on how the run went, read like the user stories' table.

| train loss | val loss | meaning |
| falling | falling | still learning |
| falling | flat or rising | overfitting |
| flat | falling | something is wrong with the data |
| flat | flat | stuck |
| rising | rising | diverged |

"Falling" and "flat" are decided against the noise of the losses (diagnosis/noise.py):
a curve converged when its last epochs moved less than their noise band, not when
one step was small. Two calls come before the shape of the curve: a best loss at or
above what predicting a constant gives (and, for a classifier, an accuracy within
binomial noise of the majority rate) is not learning, however the curve moves; and a
run of fewer than ``MIN_CONVERGED`` epochs is too short to have been seen levelling
off, so it is learning at best. A job that learnt is offered nothing that could undo
what works: only more epochs while it is still learning.
"""

from itertools import pairwise
from typing import Any, NamedTuple

from diagnosis.curves import Epoch, Task, reference_loss
from diagnosis.noise import noise_band
from diagnosis.rules.chance import beyond_majority, chance_tolerance
from diagnosis.rules.common import watched_key
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
MIN_CONVERGED = TAIL + 1  # a fall, then TAIL epochs to see it level off: fewer cannot show convergence

_key = watched_key


def _falling(history: list[Epoch], key: str) -> bool:
    """Fell beyond its noise band (and by at least 1 %) over the last epochs."""
    values = [e.get(key) for e in history[-TAIL:]]
    if len(values) < 2 or values[0] is None or values[-1] is None:
        return False
    drop = values[0] - values[-1]
    return drop > noise_band(history[-TAIL:], key).width and drop > MATERIAL * abs(values[0])


def _steadily_falling(history: list[Epoch], key: str) -> bool:
    """Down at every one of the last epochs (two at least): a trend, even where each step is inside the noise."""
    values = [e.get(key) for e in history[-TAIL:]]
    return len(values) >= 2 and None not in values and all(b < a for a, b in pairwise(values))  # type: ignore[operator]


def _flat(history: list[Epoch], key: str) -> bool:
    """Seen to be flat (within 1 %): staying inside a wide noise band is no evidence of it."""
    values = [e.get(key) for e in history[-TAIL:]]
    if len(values) < TAIL or None in values:
        return False
    return max(values) - min(values) <= MATERIAL * abs(values[-1])  # type: ignore[type-var,operator,arg-type]


class CurveVerdict(NamedTuple):
    name: str
    meaning: str  # MEANING[name], or what the few points of a short run show
    falling: bool  # the watched loss still falling at the end: more epochs is the one fix worth offering


def _no_better_than_chance(history: list[Epoch], task: Task) -> tuple[str, float, float] | None:
    """(key, best value, reference) when the best watched loss never got clearly below the loss of
    predicting a constant (the split's own reference: the validation targets' for ``val_loss``), and a
    classifier's accuracy at that epoch is within binomial noise of the majority rate. None otherwise."""
    key, best = _key(task), _best(history, task)
    on_validation = key == "val_loss"
    reference = (task.val_chance_loss if on_validation else None) or reference_loss(task)
    if reference is None or reference <= 0 or best is None or best.get(key) is None:
        return None
    value = float(best.get(key))  # type: ignore[arg-type]
    if value < reference - chance_tolerance(reference, task):
        return None
    if task.classification and not task.multi_label:
        accuracy = best.val_accuracy() if on_validation else best.accuracy()
        majority = (task.val_majority_rate or task.majority_rate) if on_validation else task.majority_rate
        n = best.n_val if on_validation else best.n_train
        if accuracy is not None and majority is not None and n and beyond_majority(accuracy, majority, n):
            return None
    return key, value, reference


def _from_curves(history: list[Epoch], task: Task) -> CurveVerdict:
    key = _key(task)
    falling = _falling(history, key) or _steadily_falling(history, key)
    if (chance := _no_better_than_chance(history, task)) is not None:
        watched, value, reference = chance
        meaning = (f"not learning: its best {watched} ({value:.4g}) is no better than the {reference:.4g} of "
                   "predicting a constant" + (", though it was still falling: more epochs may take it past that"
                                             if falling else ""))
        return CurveVerdict("not_learning", meaning, falling)
    if len(history) < MIN_CONVERGED:
        return CurveVerdict("learning", (
            f"learning: better than predicting a constant after {len(history)} epoch{'s' * (len(history) > 1)}, "
            "too few to see whether the loss has levelled off; more epochs would tell"), True)
    if task.has_validation and _falling(history, key) and _flat(history, "loss"):
        return CurveVerdict("data_problem", MEANING["data_problem"], False)
    still = _falling(history, key) or (_steadily_falling(history, key) and _steadily_falling(history, "loss"))
    return CurveVerdict("learning", MEANING["learning"], True) if still else \
        CurveVerdict("converged", MEANING["converged"], False)


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
                 preflight_fix: Suggestion | None, falling: bool = False) -> list[Suggestion]:
    if source is None and (verdict == "learning" or (verdict == "not_learning" and falling)):
        return [more_epochs(spec)]  # still falling, with no finding to say why it should not go on
    if learnt and source is None:
        return []
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
    curves = _from_curves(history, task) if verdict is None else None
    if curves is not None:
        verdict = curves.name
    if unstable is not None and source is None:
        source = unstable  # the verdict's name comes from the curves; its warning and fixes from the instability
    best = _best(history, task)
    learnt = verdict in ("learning", "converged", "overfitting")
    healthy = verdict in ("learning", "converged") and unstable is None
    message = f"Verdict: {curves.meaning if curves is not None else MEANING[verdict]}."
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
        suggestions=_suggestions(verdict, learnt, source, spec, preflight_fix,
                                 falling=curves is not None and curves.falling))
