"""The final verdict: one line on how the run went, read like the user stories' table.

| train loss | val loss | meaning |
| falling | falling | still learning |
| falling | flat or rising | overfitting |
| flat | falling | something is wrong with the data |
| flat | flat | stuck |
| rising | rising | diverged |
"""

from typing import Any

from diagnosis.curves import Epoch, Task, rel_change
from diagnosis.suggest import more_epochs
from models.findings import VERDICT_BY_CODE, Code, Finding, Suggestion

BY_CODE = VERDICT_BY_CODE  # (code, verdict), most decisive first: derived from models.findings.CODES
MEANING = {
    "learning": "still learning: both losses were falling at the end, more epochs would help",
    "converged": "converged: the losses have levelled off",
    "overfitting": "overfitting: the training loss fell while the validation loss rose",
    "not_learning": "not learning: the model never got past what ignoring the input gives",
    "diverged": "diverged: the loss blew up",
    "data_problem": "a data problem: the validation data does not look like the training data",
    "plateau": "stuck on a plateau well above what the data allows",
}


def _falling(values: list[float | None]) -> bool:
    clean = [v for v in values if v is not None]
    return len(clean) >= 2 and clean[-1] < clean[0] and rel_change(clean[0], clean[-1]) > 0.01


def _best(history: list[Epoch], task: Task) -> Epoch | None:
    key = "val_loss" if task.has_validation else "loss"
    scored = [e for e in history if e.get(key) is not None]
    return min(scored, key=lambda e: e.get(key)) if scored else None  # type: ignore[arg-type,return-value]


def final_verdict(history: list[Epoch], task: Task, findings: list[dict[str, Any]], spec: dict[str, Any],
                  preflight_fix: Suggestion | None = None) -> Finding:
    """Args:
        preflight_fix: the combined fix of the preflight warnings, offered even when
            the run learned (it learned despite them).
    """
    codes = {f["code"]: f for f in findings if f["severity"] != "info"}
    verdict, source = None, None
    for code, name in BY_CODE:
        if code.value in codes:
            verdict, source = name, codes[code.value]
            break
    tail = history[-3:]
    if verdict is None:
        train_falling = _falling([e.loss for e in tail])
        val_falling = _falling([e.val_loss for e in tail]) if task.has_validation else train_falling
        if task.has_validation and val_falling and not train_falling and len(history) >= 3 and _flat_train(history):
            verdict = "data_problem"
        else:
            verdict = "learning" if train_falling and val_falling else "converged"
    unstable = codes.get(Code.unstable.value)
    if unstable is not None and source is None:
        source = unstable  # the verdict's name comes from the curves; its warning and fixes from the instability
    best = _best(history, task)
    suggestions: list[Suggestion] = []
    if verdict in ("learning", "converged") and unstable is None:
        suggestions = [preflight_fix] if preflight_fix is not None else []
        if verdict == "learning":
            suggestions.append(more_epochs(spec))
    elif source is not None:
        suggestions = [Suggestion.model_validate(s) for s in source.get("suggestions", [])]
    healthy = verdict in ("learning", "converged") and unstable is None
    if verdict in ("learning", "converged") and unstable is not None:
        suggestions = [Suggestion.model_validate(s) for s in unstable.get("suggestions", [])]
    suggestions = [s for s in suggestions if s is not None]
    return Finding(
        code=Code.verdict, severity="info" if healthy else "warning", phase="final",
        epoch=history[-1].epoch if history else None,
        message=f"Verdict: {MEANING[verdict]}." + (" Training was unstable: results will vary from run to run."
                                                    if unstable is not None else "")
                + (f" Best epoch: {best.epoch}." if best else ""),
        evidence={"verdict": verdict, "best_epoch": best.epoch if best else None,
                  "best": {k: round(v, 4) for k, v in best.logs.items() if v is not None} if best else None,
                  "epochs_run": len(history), "from": source["code"] if source else None,
                  "chance_loss": None if task.chance_loss is None else round(task.chance_loss, 4),
                  "majority_rate": None if task.majority_rate is None else round(task.majority_rate, 4),
                  "target_variance": None if task.target_variance is None else round(task.target_variance, 4)},
        suggestions=suggestions)


def _flat_train(history: list[Epoch]) -> bool:
    losses = [e.loss for e in history[-3:]]
    return None not in losses and rel_change(min(losses), max(losses)) < 0.01  # type: ignore[type-var,arg-type]
