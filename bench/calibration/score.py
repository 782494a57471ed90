"""Scoring: what each run raised against what its case expects, per code.

A code is *raised* on a run when one of its findings was a warning or an error,
or was one before later epochs resolved it (a user saw it). Info findings are
not raised. For every code:

- recall: runs that expect it and raised it / runs that expect it;
- false-alarm rate: runs that raised it although it is neither expected nor
  acceptable there / runs where it is neither expected nor acceptable;
- lag: the first training epoch it was raised minus the onset epoch read from
  the run's own curve; within ``TIMELY`` epochs either side counts as timely.
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.calibration.cases import CalibrationCase, Onset
from models.findings import Code

TIMELY = 3
TRAINING_CODES = ("stuck_at_chance", "saturated_outputs", "diverging", "overfitting", "plateau", "unstable",
                  "vanishing_gradients")
FLAT_WITHIN = 0.05  # flat: the train loss stays within 5 % of its final value
FLAT_VISIBLE = 2  # ...and three flat epochs (its first plus two) make it visible
BOUNCE = 0.10  # instability: the validation loss jumps up by more than 10 % ...
BOUNCES = 2  # ...a second time


@dataclass
class RunResult:
    name: str
    group: str
    healthy: bool
    expected: list[str]
    acceptable: list[str]
    raised: dict[str, int | None]  # code -> first epoch (None: preflight)
    warnings: list[dict[str, Any]]  # {"code", "epoch", "message"} of each raised finding
    onset: int | None
    learned: bool
    verdict: str | None
    seconds: float
    epochs: int
    # {"code", "suggestion", "learned", "verdict", "seconds"}, or {"code", "suggestion", "skipped": True}
    retry: dict[str, Any] | None = None

    def lag(self, code: str) -> int | None:
        first = self.raised.get(code)
        return None if first is None or self.onset is None else first - self.onset


def raised_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["severity"] != "info" or "resolved_epoch" in f.get("evidence", {})]


def _series(curves: list[dict[str, Any]], key: str) -> list[float] | None:
    values = [c.get(key) for c in curves]
    finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    return values if values and finite else None  # type: ignore[return-value]


def onset_epoch(kind: Onset, curves: list[dict[str, Any]]) -> int | None:
    """The first epoch (1-based) at which a careful reader of the curve sees the bug; None: it never shows."""
    if kind == "start":
        return 1
    if kind == "after_best_val":
        vals = _series(curves, "val_loss")
        if not vals:
            return None
        best = min(range(len(vals)), key=vals.__getitem__)
        return best + 2 if best + 1 < len(vals) else None  # the epoch after the best; a best at the end never shows
    if kind == "flat":
        losses = _series(curves, "loss")
        if not losses:
            return None
        last, start = losses[-1], len(losses)
        while start > 0 and abs(losses[start - 1] - last) <= FLAT_WITHIN * abs(last):
            start -= 1
        onset = start + 1 + FLAT_VISIBLE
        return onset if onset <= len(losses) else None
    vals = _series(curves, "val_loss") or _series(curves, "loss")
    if not vals:
        return None
    rises = [i + 1 for i in range(1, len(vals)) if vals[i] > (1 + BOUNCE) * vals[i - 1]]
    return rises[BOUNCES - 1] if len(rises) >= BOUNCES else None


@dataclass
class CodeScore:
    code: str
    expected: int = 0
    found: int = 0
    timely: int = 0
    lags: list[int] = field(default_factory=list)
    clean_runs: int = 0  # runs where it is neither expected nor acceptable
    false_alarms: int = 0
    missed_runs: list[str] = field(default_factory=list)
    false_alarm_runs: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.clean_runs if self.clean_runs else None


def score_codes(results: list[RunResult]) -> dict[str, CodeScore]:
    seen = {code for r in results for code in [*r.raised, *r.expected]}
    codes = [*TRAINING_CODES, *sorted(seen - set(TRAINING_CODES))]
    scores = {code: CodeScore(code) for code in codes}
    for r in results:
        for code, score in scores.items():
            if code in r.expected:
                score.expected += 1
                if code in r.raised:
                    score.found += 1
                    lag = r.lag(code)
                    if lag is not None:
                        score.lags.append(lag)
                        score.timely += abs(lag) <= TIMELY
                else:
                    score.missed_runs.append(r.name)
            elif code not in r.acceptable:
                score.clean_runs += 1
                if code in r.raised:
                    score.false_alarms += 1
                    score.false_alarm_runs.append(r.name)
    return scores


def retry_harm(results: list[RunResult]) -> list[RunResult]:
    """Runs that learnt whose top-suggestion retry did not learn: a suggestion that broke a working job."""
    return [r for r in retried(results) if r.learned and not r.retry["learned"]]  # type: ignore[index]


def retried(results: list[RunResult]) -> list[RunResult]:
    return [r for r in results if r.retry is not None and not r.retry.get("skipped")]


def summary(results: list[RunResult]) -> dict[str, Any]:
    scores = score_codes(results)
    healthy = [r for r in results if r.healthy]
    retries = retried(results)
    return {
        "runs": len(results), "healthy_runs": len(healthy), "buggy_runs": len(results) - len(healthy),
        "healthy_warnings": sum(len(r.warnings) for r in healthy),
        "healthy_runs_warned": sum(1 for r in healthy if r.warnings),
        "healthy_not_learned": [r.name for r in healthy if not r.learned],
        "codes": {code: {**asdict(s), "recall": s.recall, "false_alarm_rate": s.false_alarm_rate}
                  for code, s in scores.items()},
        "retried": len(retries), "retry_learned": sum(1 for r in retries if r.retry and r.retry["learned"]),
        "retry_skipped": sum(1 for r in results if r.retry is not None and r.retry.get("skipped")),
        "retry_broke": [r.name for r in retry_harm(results)],
        "seconds": round(sum(r.seconds + (r.retry or {}).get("seconds", 0.0) for r in results), 1),
    }


def result_of(case: CalibrationCase, findings: list[dict[str, Any]], curves: list[dict[str, Any]], learned: bool,
              verdict: str | None, seconds: float) -> RunResult:
    raised: dict[str, int | None] = {}
    warnings = []
    for f in raised_findings(findings):
        warnings.append({"code": f["code"], "epoch": f.get("epoch"), "message": f["message"]})
        if f["code"] == Code.verdict.value:
            continue
        epoch = f.get("epoch") if f["phase"] == "training" else None
        if f["code"] not in raised or (epoch is not None and (raised[f["code"]] or epoch + 1) > epoch):
            raised[f["code"]] = epoch
    return RunResult(case.name, case.group, case.healthy, sorted(case.expected), sorted(case.acceptable), raised,
                     warnings, onset_epoch(case.onset, curves), learned, verdict, round(seconds, 2), len(curves))
