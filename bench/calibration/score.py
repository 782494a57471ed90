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

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.calibration.cases import CalibrationCase
from bench.calibration.onset import onset_epoch
from models.findings import TRAINING_CODES, Code

TIMELY = 3


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
    curves: dict[str, list[Any]] = field(default_factory=dict)  # columnar, as GET /v1/jobs/{id}/curves

    @property
    def wrong_warnings(self) -> list[dict[str, Any]]:
        """Warnings of codes that the case neither expects nor accepts (the verdict's included)."""
        return [w for w in self.warnings if w["code"] not in self.expected and w["code"] not in self.acceptable]

    def lag(self, code: str) -> int | None:
        first = self.raised.get(code)
        return None if first is None or self.onset is None else first - self.onset


def raised_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["severity"] != "info" or "resolved_epoch" in f.get("evidence", {})]


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
    training = [scores[code] for code in TRAINING_CODES]
    return {
        "recall": sum(s.found for s in training) / max(1, sum(s.expected for s in training)),
        "timely": sum(s.timely for s in training) / max(1, sum(len(s.lags) for s in training)),
        "false_alarms": sum(s.false_alarms for s in training),
        "runs": len(results), "healthy_runs": len(healthy), "buggy_runs": len(results) - len(healthy),
        "healthy_warnings": sum(len(r.wrong_warnings) for r in healthy),
        "healthy_runs_warned": sum(1 for r in healthy if r.wrong_warnings),
        "healthy_acceptable_warnings": sum(len(r.warnings) - len(r.wrong_warnings) for r in healthy),
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
                     warnings, onset_epoch(case.onset, curves), learned, verdict, round(seconds, 2), len(curves),
                     curves={key: [c.get(key) for c in curves] for key in (curves[0] if curves else {})})
