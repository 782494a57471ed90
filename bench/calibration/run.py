"""The calibration benchmark: every case through the real worker code (bench/stories/local.py
``LocalRunner``: SQLite, preflight, ``run_training`` with the diagnosis monitor), then per-code
recall, false-alarm rate and lag from onset, the warnings on healthy runs, and whether a top
suggestion ever turned a job that learnt into one that does not.

    python -m bench.calibration                 # all cases, with retries (~15 min on 2 cores)
    python -m bench.calibration --quick         # 15 runs: the hard healthy groups, every code (~2-3 min)
    python -m bench.calibration --only overfit --no-retries
    python -m bench.calibration --json bench/out/calibration.json
"""

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.calibration.cases import CASES, CalibrationCase
from bench.calibration.learnt import learnt
from bench.calibration.score import RunResult, result_of, summary
from bench.stories.local import LocalRunner, Outcome
from bench.stories.run import top_suggestion


def verdict_name(outcome: Outcome) -> str | None:
    verdict = outcome.verdict
    return None if verdict is None else verdict["evidence"].get("verdict")


def more_epochs_only(patch: dict[str, Any]) -> bool:
    """A patch that only trains longer: with the same seed the first epochs repeat and the verdict
    is judged at the best epoch, so it cannot undo what the run learnt. Not worth its minutes."""
    return set(patch) == {"fit"} and set(patch["fit"]) == {"epochs"}


def run_case(runner: LocalRunner, case: CalibrationCase, retries: bool) -> RunResult:
    outcome = runner.run(case.case)
    result = result_of(case, outcome.findings, outcome.curves, learnt(case, outcome),
                       verdict_name(outcome), outcome.seconds)
    index = top_suggestion({"findings": outcome.findings}) if retries else None
    if index is not None:
        finding = outcome.findings[index]
        suggestion = finding["suggestions"][0]
        if more_epochs_only(suggestion["patch"]):
            result.retry = {"code": finding["code"], "suggestion": suggestion["summary"], "skipped": True}
            return result
        retried = runner.run(case.case, suggestion["patch"])
        result.retry = {"code": finding["code"], "suggestion": suggestion["summary"],
                        "learned": learnt(case, retried), "verdict": verdict_name(retried),
                        "seconds": round(retried.seconds, 2)}
    return result


def select(quick: bool, only: list[str] | None) -> list[CalibrationCase]:
    return [c for c in CASES if (not quick or c.quick) and (not only or any(part in c.name for part in only))]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def report(results: list[RunResult], figures: dict[str, Any]) -> None:
    print(f"\n{'code':24} {'recall':>14} {'false alarms':>16} {'timely':>8} {'lags (epochs)':30} missed")
    for code, s in figures["codes"].items():
        if not s["expected"] and not s["false_alarms"]:
            continue
        recall = f"{s['found']}/{s['expected']} {_rate(s['recall'])}" if s["expected"] else "-"
        alarms = f"{s['false_alarms']}/{s['clean_runs']} {_rate(s['false_alarm_rate'])}"
        timely = f"{s['timely']}/{len(s['lags'])}" if s["lags"] else "-"
        print(f"{code:24} {recall:>14} {alarms:>16} {timely:>8} {str(sorted(s['lags']))[:30]:30} "
              f"{', '.join(s['missed_runs'])}")
        if s["false_alarm_runs"]:
            print(f"{'':24} false alarms on: {', '.join(s['false_alarm_runs'])}")
    print(f"\nwarnings on healthy runs: {figures['healthy_warnings']} on {figures['healthy_runs_warned']} of "
          f"{figures['healthy_runs']} runs (and {figures['healthy_acceptable_warnings']} acceptable ones)")
    for r in results:
        if r.healthy:
            for w in r.warnings:
                mark = " (acceptable here)" if w["code"] in r.acceptable else ""
                print(f"  {r.name}: {w['code']}@{w['epoch']}{mark}: {w['message']}")
    if figures["healthy_not_learned"]:
        print(f"healthy runs that did not learn (doubtful cases): {', '.join(figures['healthy_not_learned'])}")
    print(f"\nretries with the top suggestion: {figures['retried']}, of which learnt: {figures['retry_learned']} "
          f"({figures['retry_skipped']} skipped: more epochs only); "
          f"a job that learnt broken by its top suggestion: {len(figures['retry_broke'])}")
    for r in results:
        if r.retry is not None and r.name in figures["retry_broke"]:
            print(f"  {r.name}: {r.retry['code']}: {r.retry['suggestion']} -> {r.retry['verdict']}")
    print(f"\n{figures['runs']} runs ({figures['healthy_runs']} healthy, {figures['buggy_runs']} buggy), "
          f"{figures['seconds']:.0f} s of training")
    print(f"training codes: recall {figures['recall']:.0%}, timely {figures['timely']:.0%} of those with an onset, "
          f"{figures['false_alarms']} false alarms; {figures['healthy_warnings']} warnings on healthy runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="15 runs: the hard healthy groups and every code, seed 1")
    parser.add_argument("--only", nargs="*", help="substrings of case names")
    parser.add_argument("--json", type=Path, help="write the results and figures there")
    parser.add_argument("--retries", action=argparse.BooleanOptionalAction, default=True,
                        help="retry each run with its top suggestion (default: on)")
    args = parser.parse_args()
    cases = select(args.quick, args.only)
    with tempfile.TemporaryDirectory(prefix="calibration-") as root:
        results = run_all(LocalRunner(Path(root)), cases, args.retries)
    figures = summary(results)
    report(results, figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": figures, "runs": [asdict(r) for r in results]}, indent=2))
        print(f"written to {args.json}")


def run_all(runner: LocalRunner, cases: list[CalibrationCase], retries: bool) -> list[RunResult]:
    results = []
    started = time.perf_counter()
    for number, case in enumerate(cases, 1):
        began = time.perf_counter()
        result = run_case(runner, case, retries)
        results.append(result)
        raised = ", ".join(f"{c}@{e}" if e else c for c, e in sorted(result.raised.items())) or "-"
        retry = "" if result.retry is None else " retry:" + (
            "skipped" if result.retry.get("skipped") else "learnt" if result.retry["learned"] else "NOT LEARNT")
        print(f"[{number:3}/{len(cases)}] {case.name:42} {time.perf_counter() - began:5.1f}s "
              f"{'learnt' if result.learned else 'NOT LEARNT':10} onset {result.onset or '-':>2}  raised: {raised}"
              f"{retry}", flush=True)
    print(f"elapsed {time.perf_counter() - started:.0f} s")
    return results
