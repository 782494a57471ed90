"""The user-story benchmark, through the running service.

For each case: upload its data, dry-run it (preflight), submit it (forced past
preflight errors, so the training symptoms show too), wait, then retry with
the top suggestion and see whether that attempt learned. Prints a table, then
recall, precision (a training-phase warning on a healthy control is a false
alarm) and the compute that ``diagnosis.stop_on`` would have saved.

    .venv/bin/python -m bench.stories.run                 # embedded service, all cases (~6-8 min)
    .venv/bin/python -m bench.stories.run --fast          # without the slow story-3 case
    .venv/bin/python -m bench.stories.run --url http://127.0.0.1:8000
"""

import argparse
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.service import Service
from bench.stories.cases import CASES, Case
from bench.stories.local import learned_from_verdict

OUT = Path(__file__).resolve().parents[1] / "out" / "stories.json"


def upload(client: httpx.Client, case: Case) -> str:
    if case.dataset is None:
        return case.spec["dataset"]
    buffer = io.BytesIO()
    np.savez(buffer, **case.dataset())
    response = client.post("/v1/datasets", files={"file": (f"{case.name}.npz", buffer.getvalue())})
    response.raise_for_status()
    return response.json()["id"]


def wait(client: httpx.Client, job_id: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise TimeoutError(job_id)


def _rank(finding: dict[str, Any]) -> int:
    if finding["code"] == "verdict":
        return 0 if finding["severity"] == "warning" else 2
    if finding["phase"] == "training":
        return 1  # resolved ones too: the symptom was real when it was raised
    return 3 if finding["severity"] == "error" else 4


def top_suggestion(job: dict[str, Any]) -> int | None:
    """The finding whose first suggestion a user would apply: a warning verdict, else
    what training found, else the verdict's own advice, else what preflight found."""
    findings = job["findings"]
    ranked = sorted((i for i, f in enumerate(findings) if f["suggestions"]), key=lambda i: (_rank(findings[i]), i))
    return ranked[0] if ranked else None


def alarmed(finding: dict[str, Any]) -> bool:
    """A warning or error, or one that was before later epochs resolved it."""
    return finding["severity"] != "info" or "resolved_epoch" in finding.get("evidence", {})


def saved_seconds(job: dict[str, Any], curves: dict[str, list[Any]], expected: set[str]) -> tuple[float, float]:
    """Seconds after the first expected training finding, and the run's total: what stop_on would save."""
    epochs = [f["epoch"] for f in job["findings"]
              if f["phase"] == "training" and f["code"] in expected and f.get("epoch")]
    durations = curves.get("duration_s", [])
    if not epochs or not durations:
        return 0.0, float(sum(durations))
    first = min(epochs)
    return float(sum(durations[first:])), float(sum(durations))


def run_case(client: httpx.Client, case: Case) -> dict[str, Any]:
    dataset = upload(client, case)
    spec = {**case.spec, "dataset": dataset, "name": case.name}
    started = time.perf_counter()
    preflight = client.post("/v1/jobs:validate", json=spec).json()
    preflight_ms = (time.perf_counter() - started) * 1000
    submitted = client.post("/v1/jobs", json={**spec, "force": True})
    submitted.raise_for_status()
    job = wait(client, submitted.json()["id"])
    curves = client.get(f"/v1/jobs/{job['id']}/curves").json()
    found = [f for f in job["findings"] if f["code"] != "verdict" and alarmed(f)]
    detection = {f["code"]: f["epoch"] for f in job["findings"] if f["phase"] == "training" and f.get("epoch")}
    result = {
        "case": case.name, "story": case.story, "healthy": case.healthy, "expected": sorted(case.expected),
        "found": sorted({f["code"] for f in found}), "detected_at": detection,
        "training_warnings": sorted({f["code"] for f in found if f["phase"] == "training"}),
        "verdict": (job.get("verdict") or {}).get("evidence", {}).get("verdict"),
        "preflight": sorted({f["code"] for f in preflight.get("findings", [])}), "job_id": job["id"],
        "status": job["status"], "seconds": job["timings"]["running_s"], "preflight_ms": round(preflight_ms, 1),
        "diagnosis_s": (job.get("verdict") or {}).get("evidence", {}).get("diagnosis_s"),
        "diagnosis_steady_s": (job.get("verdict") or {}).get("evidence", {}).get("diagnosis_steady_s"),
        "epochs_s": round(sum(curves.get("duration_s", [])), 3),
        "epochs_steady_s": round(sum(curves.get("duration_s", [])[1:]), 3),
    }
    result["saved_s"], result["total_s"] = saved_seconds(job, curves, case.expected)
    index = None if case.healthy else top_suggestion(job)
    if index is not None:
        fix = job["findings"][index]
        retried = client.post(f"/v1/jobs/{job['id']}/retry", json={"finding": index, "suggestion": 0, "force": True})
        retried.raise_for_status()
        child = wait(client, retried.json()["id"])
        result["retry"] = {"job_id": child["id"], "from": fix["code"], "suggestion": fix["suggestions"][0]["summary"],
                           "verdict": (child.get("verdict") or {}).get("evidence", {}).get("verdict"),
                           "learned": learned_from_verdict(child.get("verdict"), case.regression)}
    return result


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    print(f"\n{'case':30} {'expected':70} {'missing':22} {'first detection':28} retry learned")
    for r in results:
        missing = sorted(set(r["expected"]) - set(r["found"]))
        detection = ", ".join(f"{c}@{e}" for c, e in sorted(r["detected_at"].items()) if c in r["expected"]) or "-"
        retry = r.get("retry")
        learned = "-" if retry is None else ("yes" if retry["learned"] else "NO") + f" ({retry['verdict']})"
        expected = ", ".join(r["expected"]) or "(healthy control)"
        print(f"{r['case']:30} {expected:70} {', '.join(missing) or '-':22} {detection:28} {learned}")
        if r["healthy"] and r["training_warnings"]:
            print(f"{'':30} FALSE ALARM: {r['training_warnings']}")
    stories = [r for r in results if not r["healthy"]]
    expected = sum(len(r["expected"]) for r in stories)
    hits = sum(len(set(r["expected"]) & set(r["found"])) for r in stories)
    false_alarms = sum(len(r["training_warnings"]) for r in results if r["healthy"])
    retried = [r for r in stories if "retry" in r]
    by_story: dict[str, bool] = {}
    for r in retried:
        by_story[r["story"]] = by_story.get(r["story"], True) and r["retry"]["learned"]
    saved, total = sum(r["saved_s"] for r in stories), sum(r["total_s"] for r in stories)
    watched = [r for r in results if r.get("diagnosis_s") is not None and r["epochs_s"]]
    overhead = sum(r["diagnosis_s"] for r in watched) / sum(r["epochs_s"] for r in watched) if watched else None
    steady = [r for r in watched if r.get("diagnosis_steady_s") is not None and r["epochs_steady_s"]]
    steady_overhead = (sum(r["diagnosis_steady_s"] for r in steady) / sum(r["epochs_steady_s"] for r in steady)
                       if steady else None)
    preflight_ms = sorted(r["preflight_ms"] for r in results)
    summary = {
        "recall": hits / expected if expected else None, "expected_codes": expected, "found_codes": hits,
        "precision": hits / (hits + false_alarms) if hits + false_alarms else None, "false_alarms": false_alarms,
        "healthy_controls": sum(1 for r in results if r["healthy"]),
        "stories_repaired": sum(by_story.values()), "stories": len(by_story),
        "stop_on_saved_s": round(saved, 1), "buggy_training_s": round(total, 1),
        "diagnosis_overhead": None if overhead is None else round(overhead, 4),
        "diagnosis_overhead_after_epoch_1": None if steady_overhead is None else round(steady_overhead, 4),
        "preflight_ms_median": preflight_ms[len(preflight_ms) // 2], "preflight_ms_max": preflight_ms[-1],
    }
    print(f"\nrecall {hits}/{expected} = {summary['recall']:.0%}   precision {summary['precision']:.0%} "
          f"({false_alarms} training-phase warnings on {summary['healthy_controls']} healthy controls)")
    print(f"stories whose top-suggestion retry learned: {summary['stories_repaired']}/{summary['stories']}")
    if overhead is not None:
        print(f"diagnosis overhead (monitor time / epoch time, all cases): {overhead:.2%} overall, "
              f"{steady_overhead or 0:.2%} after epoch 1 (the first epoch traces the probe)")
    print(f"preflight (POST /v1/jobs:validate) median {summary['preflight_ms_median']:.0f} ms, "
          f"max {summary['preflight_ms_max']:.0f} ms")
    print(f"stop_on with the expected codes would have saved {saved:.1f} s of {total:.1f} s of training "
          f"on the buggy cases ({saved / total:.0%})" if total else "")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running service (default: start an embedded one)")
    parser.add_argument("--fast", action="store_true", help="leave out the slow cases")
    parser.add_argument("--only", nargs="*", help="case names")
    args = parser.parse_args()
    cases = [c for c in CASES if (not args.fast or not c.slow) and (not args.only or c.name in args.only)]
    with tempfile.TemporaryDirectory(prefix="stories-") as tmp:
        service = Service(argparse.Namespace(url=args.url, mode="embedded", database_url=None, redis_db=None),
                          Path(tmp))
        service.start()
        try:
            with httpx.Client(base_url=service.url, timeout=60, headers=service.auth_headers()) as client:
                results = []
                for case in cases:
                    print(f"running {case.name} ...", flush=True)
                    results.append(run_case(client, case))
        finally:
            service.stop()
    summary = report(results)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": summary, "cases": results}, indent=2))
    print(f"\nwritten to {OUT}")


if __name__ == "__main__":
    main()
