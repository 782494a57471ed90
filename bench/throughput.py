"""Throughput of one worker host: many story-sized jobs submitted at once, against the same jobs run
one after the other as plain Keras scripts (issue 12).

The jobs cycle through the user stories' cases (bench/stories/cases.py: the five stories' models and
data, broken and healthy; the ones with callbacks or ``scale_y``, which the plain script does not
redo, are left out), each with its own seed, at most ``--epochs`` epochs. The service side starts
`trainyard serve` (embedded by default, ``TRAINYARD_CPU_SLOTS`` from ``--slots``), uploads each
case's data once, then submits every job (``force``, ``diagnosis.stop_on: []`` so that each trains
every epoch, as the script does) and times from the first submit until the last job has finished.
The plain side runs ``bench/plain_fit.py`` once per job, in a fresh Python process each (as a user's
script runs), one after the other, on the same data, spec and seed.

    .venv/bin/python -m bench.throughput                       # 50 jobs, 3 epochs each
    .venv/bin/python -m bench.throughput --jobs 20 --slots 2   # fewer jobs, 2 slots
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.service import BENCH, PYTHON, ROOT, Service, log
from bench.stories.cases import CASES, Case
from datastore.builtin import load_builtin

OUT = BENCH / "out" / "throughput.json"


def benchmark_cases() -> list[Case]:
    """The cases the plain script can redo exactly: no fit callbacks, no ``scale_y``."""
    return [c for c in CASES if not c.spec["fit"].get("callbacks") and not c.spec.get("data", {}).get("scale_y")]


def arrays_of(case: Case) -> dict[str, np.ndarray]:
    return case.dataset() if case.dataset is not None else load_builtin(case.spec["dataset"])


def job_spec(case: Case, dataset: str, seed: int, epochs: int) -> dict[str, Any]:
    spec = json.loads(json.dumps(case.spec))
    spec.update(dataset=dataset, seed=seed, force=True, diagnosis={"stop_on": []},
                name=f"throughput-{case.name}")
    spec["fit"]["epochs"] = min(spec["fit"]["epochs"], epochs)
    return spec


def plain_inputs(case: Case, arrays: dict[str, np.ndarray], spec: dict[str, Any], folder: Path,
                 index: int) -> tuple[Path, Path]:
    """The spec and .npz plain_fit.py reads: ``one_hot`` done here (the script does not do it)."""
    spec = json.loads(json.dumps(spec))
    data = spec.setdefault("data", {})
    npz = folder / f"{case.name}.npz"
    if data.pop("one_hot", False):
        npz = folder / f"{case.name}-onehot.npz"
        y = arrays["y"].astype("int64")
        arrays = {**arrays, "y": np.eye(int(y.max()) + 1, dtype="float32")[y]}
    if not npz.exists():
        np.savez(npz, **arrays)
    path = folder / f"plain-{index}.json"
    path.write_text(json.dumps(spec))
    return path, npz


def upload(client: httpx.Client, case: Case, arrays: dict[str, np.ndarray]) -> str:
    if case.dataset is None:
        return case.spec["dataset"]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    response = client.post("/v1/datasets", files={"file": (f"{case.name}.npz", buffer.getvalue())})
    response.raise_for_status()
    return response.json()["id"]


def submit(client: httpx.Client, spec: dict[str, Any]) -> str:
    while True:
        response = client.post("/v1/jobs", json=spec)
        if response.status_code == 429:  # one spec check per tenant at a time: wait our turn
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code != 202:
            raise SystemExit(f"POST /v1/jobs answered {response.status_code}: {response.text[:2000]}")
        return response.json()["id"]


def run_service(args: argparse.Namespace, workdir: Path, jobs: list[tuple[Case, int]]) -> dict[str, Any]:
    if args.slots is not None:
        os.environ["TRAINYARD_CPU_SLOTS"] = str(args.slots)
    service = Service(args, workdir)
    try:
        service.start()
        client = httpx.Client(base_url=service.url, timeout=300, headers=service.auth_headers())
        datasets = {case.name: upload(client, case, arrays_of(case)) for case, _ in jobs}
        specs = [job_spec(case, datasets[case.name], seed, args.epochs) for case, seed in jobs]
        log(f"service: submitting {len(specs)} jobs")
        started = time.monotonic()
        ids = [submit(client, spec) for spec in specs]
        submitted_s = time.monotonic() - started
        pending, finished = set(ids), {}
        while pending:
            for job_id in list(pending):
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    finished[job_id] = job
                    pending.discard(job_id)
            if pending:
                time.sleep(0.5)
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"{len(pending)} jobs not finished after {args.timeout:.0f} s\n{service.log_tail()}")
        wall = time.monotonic() - started
        client.close()
    finally:
        service.stop()
    statuses = [finished[i]["status"] for i in ids]
    return {"wall_s": wall, "submit_s": submitted_s, "statuses": {s: statuses.count(s) for s in set(statuses)},
            "errors": [finished[i]["error"] for i in ids if finished[i]["status"] != "succeeded"][:5]}


def run_plain(args: argparse.Namespace, workdir: Path, jobs: list[tuple[Case, int]]) -> dict[str, Any]:
    inputs = []
    arrays = {case.name: arrays_of(case) for case, _ in jobs}
    for index, (case, seed) in enumerate(jobs):
        spec = job_spec(case, case.spec["dataset"], seed, args.epochs)
        inputs.append(plain_inputs(case, arrays[case.name], spec, workdir, index))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    log(f"plain: running {len(jobs)} scripts one after the other")
    started, failed = time.monotonic(), 0
    for index, (spec_path, npz) in enumerate(inputs):
        done = subprocess.run([PYTHON, str(BENCH / "plain_fit.py"), str(spec_path), str(npz),
                               str(workdir / f"plain-{index}.out.json"), "--shuffle", "tfdata"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            failed += 1
            log(f"plain job {index} failed: {done.stderr[-500:]}")
    return {"wall_s": time.monotonic() - started, "failed": failed}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=3, help="at most this many epochs per job (the stories' own "
                                                           "counts are 6-25)")
    ap.add_argument("--slots", type=int, help="TRAINYARD_CPU_SLOTS of the service (default: the host's default)")
    ap.add_argument("--mode", choices=["embedded", "distributed"], default="embedded")
    ap.add_argument("--url", help=argparse.SUPPRESS)  # Service reads it; this benchmark starts its own
    ap.add_argument("--database-url", help=argparse.SUPPRESS)
    ap.add_argument("--redis-db", type=int, help="distributed mode: the Redis database to use as broker")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    cases = benchmark_cases()
    jobs = [(cases[i % len(cases)], 42 + i) for i in range(args.jobs)]
    workdir = Path(tempfile.mkdtemp(prefix="trainyard-throughput-"))
    service = run_service(args, workdir, jobs)
    log(f"service: {service['wall_s']:.1f} s for {args.jobs} jobs ({service['statuses']})")
    plain = None if args.skip_plain else run_plain(args, workdir, jobs)
    result = {"jobs": args.jobs, "epochs_cap": args.epochs, "slots": args.slots, "mode": args.mode,
              "cores": os.cpu_count(), "cases": sorted({c.name for c, _ in jobs}), "service": service, "plain": plain}
    if plain is not None:
        result["speedup"] = plain["wall_s"] / service["wall_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{args.jobs} jobs ({len(result['cases'])} story cases, <= {args.epochs} epochs), "
          f"{args.mode}, slots {args.slots or 'default'}, {os.cpu_count()} cores")
    print(f"  service, submitted at once: {service['wall_s']:8.1f} s   {service['statuses']}")
    if plain is not None:
        print(f"  plain scripts, one by one:  {plain['wall_s']:8.1f} s   failed {plain['failed']}")
        print(f"  speed-up: {result['speedup']:.2f}x")
    print(f"  ({args.out})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
