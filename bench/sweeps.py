"""Sweeps with and without pruning, on data with story 5's shape (issue 14).

One grid of learning rate × batch size (6 × 4 = 24 trials, the same points and seed every time) over
story 5's model (``bench/stories/cases.py`` ``SCANS``: two conv layers, a dense layer, a 2-way softmax,
RMSprop) and its data (``bench/stories/data.py`` ``scans``: 600 generated 32×32 grey "scans", two
classes, 10 % of the labels flipped so that no setting scores perfectly), inputs rescaled (the fix story 5
found), run four times through the real service:

    (a) no pruning            pruner none,   diagnosis.stop_on []
    (b) median pruner         pruner median, diagnosis.stop_on []
    (c) diagnosis stops only  pruner none,   stop_on stuck_at_chance, diverging, saturated_outputs
    (d) both                  pruner median, the same stop_on

then a 5-fold cross-validation run (``data.folds: 5``) of the best setting of (a).

A trial is *doomed* when it would not learn: stopped by the diagnosis in (c) or (d), or, in (a), where
it ran every epoch, its final validation accuracy is no better than chance (<= 0.55 on two balanced
classes) or its final validation loss is not below ln 2 (what predicting 0.5 scores). Training time
is the sum of the epochs' ``duration_s`` (``GET /v1/jobs/{id}/curves``): queueing and start-up left out.
On a shared machine an epoch's time follows the load of the moment, so the time each pruning saved is
what the epochs it did not run took in (a) (same setting and seed: the same epochs), over all trials and
over the doomed ones (the goal: at least half of the doomed trials' time saved); the measured totals and
the service's own estimate (``pruning_saved_s``) are printed beside it.

    PYTHONPATH=. .venv/bin/python -m bench.sweeps                  # about 10-15 min on a loaded 2-core machine
    PYTHONPATH=. .venv/bin/python -m bench.sweeps --epochs 4 --variants a,d

Prints figures; asserts nothing about time.
"""

import argparse
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.service import BENCH, Service, log
from bench.stories.cases import SCANS
from bench.stories.data import scans

OUT = BENCH / "out" / "sweeps.json"
LEARNING_RATES = [1e-4, 1e-3, 3e-3, 1e-2, 1e-1, 1.0]
BATCH_SIZES = [8, 16, 32, 64]
STOP_ON = ["stuck_at_chance", "diverging", "saturated_outputs"]
VARIANTS = {
    "a": ("no pruning", "none", []),
    "b": ("median pruner", "median", []),
    "c": ("diagnosis stops", "none", STOP_ON),
    "d": ("median + diagnosis", "median", STOP_ON),
}
CHANCE_ACCURACY = 0.55
CHANCE_LOSS = math.log(2)
FINISHED = ("succeeded", "failed", "cancelled")


def noisy_scans(label_noise: float, seed: int) -> dict[str, np.ndarray]:
    """Story 5's generated scans with a share of the labels flipped: the best model is not perfect."""
    data = scans()
    flip = np.random.default_rng(seed).uniform(size=len(data["y"])) < label_noise
    data["y"] = np.where(flip, 1 - data["y"], data["y"])
    return data


def base_spec(dataset: str, epochs: int, seed: int) -> dict[str, Any]:
    spec = json.loads(json.dumps(SCANS))
    spec.update(dataset=dataset, seed=seed, force=True, name="bench-sweeps")
    spec["data"] = {**spec["data"], "scale_x": "rescale", "validation_split": 0.2}
    spec["fit"]["epochs"] = epochs
    return spec


def sweep_body(spec: dict[str, Any], variant: str, startup: int) -> dict[str, Any]:
    _, pruner, stop_on = VARIANTS[variant]
    return {"spec": spec, "sampler": "grid", "max_trials": len(LEARNING_RATES) * len(BATCH_SIZES), "parallelism": 2,
            "space": {"compile.optimizer.learning_rate": {"choice": LEARNING_RATES},
                      "fit.batch_size": {"choice": BATCH_SIZES}},
            "objective": {"metric": "val_loss", "direction": "minimize"},
            "pruning": {"pruner": pruner, "startup_trials": startup, "warmup_epochs": 1, "stop_on": stop_on},
            "name": f"bench-{variant}"}


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    while True:
        response = client.post(path, json=body)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code != 202:
            raise SystemExit(f"POST {path} answered {response.status_code}: {response.text[:2000]}")
        return response.json()


def wait(client: httpx.Client, path: str, timeout: float, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if done(body):
            return body
        time.sleep(1.0)
    raise SystemExit(f"{path} not finished after {timeout:.0f} s")


def setting(params: dict[str, Any]) -> tuple[float, int]:
    return float(params["compile.optimizer.learning_rate"]), int(params["fit.batch_size"])


def key(params: dict[str, Any]) -> str:
    """A trial's setting as a JSON key: "lr,batch"."""
    return "{},{}".format(*setting(params))


def run_variant(client: httpx.Client, spec: dict[str, Any], variant: str, args: argparse.Namespace) -> dict[str, Any]:
    log(f"({variant}) {VARIANTS[variant][0]}: submitting")
    started = time.monotonic()
    sweep = post(client, "/v1/sweeps", sweep_body(spec, variant, args.startup_trials))
    done = wait(client, f"/v1/sweeps/{sweep['id']}", args.timeout, lambda s: s["status"] != "running")
    wall = time.monotonic() - started
    trials = {}
    for trial in done["trials"]:
        curves = client.get(f"/v1/jobs/{trial['job_id']}/curves").json() if trial["job_id"] else {"duration_s": []}
        last = {k: v[-1] for k, v in curves.items() if v}
        trials[key(trial["params"])] = {
            "train_s": sum(curves["duration_s"]), "epochs_run": len(curves["duration_s"]),
            "durations": curves["duration_s"],
            "stop_reason": trial["stop_reason"], "stopped_by": trial["stopped_by"], "state": trial["state"],
            "objective": trial["objective"], "final_val_loss": last.get("val_loss"),
            "final_val_accuracy": last.get("val_accuracy")}
    best = done["best"]
    log(f"({variant}) {done['status']} in {wall:.0f} s; best {best and best['objective']}")
    return {"sweep_id": done["id"], "status": done["status"], "wall_s": wall, "trials": trials,
            "best": {"objective": best["objective"], "params": best["params"]} if best else None,
            "service_saved_s": done["pruning_saved_s"]}


def at_chance(trial: dict[str, Any]) -> bool:
    loss, accuracy = trial["final_val_loss"], trial["final_val_accuracy"]
    if loss is None or not math.isfinite(loss) or loss >= CHANCE_LOSS:
        return True
    return accuracy is not None and accuracy <= CHANCE_ACCURACY


def doomed_settings(runs: dict[str, dict[str, Any]]) -> set[str]:
    doomed = {s for s, t in runs["a"]["trials"].items() if at_chance(t)} if "a" in runs else set()
    for run in runs.values():
        doomed |= {s for s, t in run["trials"].items() if t["stop_reason"] == "diagnosis"}
    return doomed


def cross_validate(client: httpx.Client, spec: dict[str, Any], params: dict[str, Any], folds: int,
                   timeout: float) -> dict[str, Any]:
    spec = json.loads(json.dumps(spec))
    spec["compile"]["optimizer"]["learning_rate"], spec["fit"]["batch_size"] = setting(params)
    spec["data"]["folds"] = folds
    del spec["data"]["validation_split"]  # each fold's held-out part is its validation data
    spec["name"] = "bench-sweeps-cv"
    log(f"cross-validation of {params} with data.folds {folds}")
    started = time.monotonic()
    job = post(client, "/v1/jobs", spec)
    done = wait(client, f"/v1/jobs/{job['id']}", timeout, lambda j: j["status"] in FINISHED)
    return {"job_id": job["id"], "status": done["status"], "wall_s": time.monotonic() - started,
            "metrics": done["cv"]["metrics"] if done.get("cv") else None}


def durations(trial: dict[str, Any]) -> list[float]:
    """A trial's epoch times (a file saved before they were kept: its mean epoch time, for each epoch)."""
    if "durations" in trial:
        return trial["durations"]
    return [trial["train_s"] / trial["epochs_run"]] * trial["epochs_run"] if trial["epochs_run"] else []


def saved_s(base: dict[str, Any], run: dict[str, Any], settings: set[str] | None = None) -> float:
    """What the epochs ``run`` did not run took in ``base`` (same setting, same seed: the same epochs)."""
    return sum(sum(durations(t)[run["trials"][s]["epochs_run"]:])
               for s, t in base["trials"].items() if s in run["trials"] and (settings is None or s in settings))


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    doomed = doomed_settings(runs)
    base = runs.get("a")
    rows = {}
    for variant, run in runs.items():
        trials = run["trials"]
        train = sum(t["train_s"] for t in trials.values())
        row: dict[str, Any] = {
            "train_s": train, "epochs_run": sum(t["epochs_run"] for t in trials.values()),
            "trials_per_hour": len(trials) / run["wall_s"] * 3600,
            "pruned": sum(t["stop_reason"] == "pruned" for t in trials.values()),
            "diagnosis": sum(t["stop_reason"] == "diagnosis" for t in trials.values()),
            "best": run["best"], "service_saved_s": (run.get("service_saved_s") or {}).get("total")}
        if base is not None:
            doomed_base = sum(base["trials"][s]["train_s"] for s in doomed if s in base["trials"])
            doomed_saved = saved_s(base, run, doomed)
            row.update(saved_s=saved_s(base, run), measured_saved_s=base_train(base) - train,
                       doomed_base_s=doomed_base, doomed_saved_s=doomed_saved,
                       doomed_saved_share=doomed_saved / doomed_base if doomed_base else None)
        rows[variant] = row
    ceiling = None
    if base is not None:  # every doomed trial stopped after its first epoch (which also traces the model)
        doomed_base = sum(base["trials"][s]["train_s"] for s in doomed if s in base["trials"])
        after_first = sum(sum(durations(base["trials"][s])[1:]) for s in doomed if s in base["trials"])
        ceiling = after_first / doomed_base if doomed_base else None
    return {"doomed": sorted(doomed), "rows": rows, "ceiling_share": ceiling}


def base_train(run: dict[str, Any]) -> float:
    return sum(t["train_s"] for t in run["trials"].values())


def fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def show(args: argparse.Namespace, summary: dict[str, Any], cv: dict[str, Any] | None) -> None:
    rows = summary["rows"]
    print(f"\nSweep: grid lr {LEARNING_RATES} × batch {BATCH_SIZES} = 24 trials, story 5's CNN on 600 32×32×1 "
          f"scans ({100 * args.label_noise:.0f} % labels flipped), {args.epochs} epochs, parallelism 2, "
          f"seed {args.seed}, median pruner startup_trials "
          f"{args.startup_trials} warmup_epochs 1; {os.cpu_count()} cores")
    print(f"Doomed settings (stopped by the diagnosis, or at chance after every epoch in (a)): "
          f"{len(summary['doomed'])}: {summary['doomed']}")
    width = 22
    print("\n" + "".ljust(38) + "".join(f"({v}) {VARIANTS[v][0]}".ljust(width) for v in rows))

    def line(label: str, cell: Any) -> None:
        print(label.ljust(38) + "".join(str(cell(r)).ljust(width) for r in rows.values()))

    line("best objective (val_loss)", lambda r: fmt(r["best"] and r["best"]["objective"], ".4g"))
    line("best setting (lr, batch)", lambda r: "-" if not r["best"] else "{}, {}".format(*setting(r["best"]["params"])))
    line("training time, measured (s)", lambda r: fmt(r["train_s"], ".1f"))
    line("epochs run", lambda r: r["epochs_run"])
    line("trials pruned / diagnosis-stopped", lambda r: f"{r['pruned']} / {r['diagnosis']}")
    line("time saved vs (a) (s, (a)'s epochs)", lambda r: fmt(r.get("saved_s"), ".1f"))
    line("  as measured (s; load-dependent)", lambda r: fmt(r.get("measured_saved_s"), ".1f"))
    line("  the service's pruning_saved_s (s)", lambda r: fmt(r["service_saved_s"], ".1f"))
    line("doomed trials' time in (a) (s)", lambda r: fmt(r.get("doomed_base_s"), ".1f"))
    line("of it saved (s)", lambda r: fmt(r.get("doomed_saved_s"), ".1f"))
    line("share of doomed time saved", lambda r: fmt(r.get("doomed_saved_share") and 100 * r["doomed_saved_share"],
                                                     ".0f") + " %")
    line("trials per hour (wall clock)", lambda r: fmt(r["trials_per_hour"], ".0f"))
    if summary.get("ceiling_share") is not None:
        print(f"(the most any pruning can save of the doomed time: {100 * summary['ceiling_share']:.0f} %, every "
              "doomed trial stopped after its first epoch, which also traces the model)")
    if cv is not None and cv["metrics"]:
        m = cv["metrics"]
        print(f"\n5-fold cross-validation of (a)'s best setting ({cv['status']}, {cv['wall_s']:.0f} s): " + ", ".join(
            f"{name} {fmt(m[name]['mean'], '.4g')} ± {fmt(m[name]['std'], '.2g')}"
            for name in ("val_loss", "val_accuracy") if name in m))


def save(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=6, help="epochs per trial (story 5's own count: 6)")
    ap.add_argument("--variants", default="a,b,c,d")
    ap.add_argument("--startup-trials", type=int, default=5, help="the median pruner's startup_trials")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--label-noise", type=float, default=0.1, help="share of the labels flipped")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--slots", type=int, default=2, help="TRAINYARD_CPU_SLOTS of the service")
    ap.add_argument("--mode", choices=["embedded", "distributed"], default="embedded")
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--database-url", help=argparse.SUPPRESS)
    ap.add_argument("--redis-db", type=int, help="distributed mode: the Redis database to use as broker")
    ap.add_argument("--timeout", type=float, default=3600, help="per sweep, seconds")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--show", type=Path, help="print the figures of a saved --out file, run nothing")
    args = ap.parse_args(argv)

    os.environ["TRAINYARD_CPU_SLOTS"] = str(args.slots)
    service = Service(args, Path(tempfile.mkdtemp(prefix="trainyard-sweeps-")))
    runs: dict[str, dict[str, Any]] = {}
    cv = None
    started = time.monotonic()
    if args.show:
        saved = json.loads(args.show.read_text())
        show(args, summarise(saved["runs"]), saved["cv"])
        return
    try:
        service.start()
        client = httpx.Client(base_url=service.url, timeout=300, headers=service.auth_headers())
        buffer = io.BytesIO()
        np.savez(buffer, **noisy_scans(args.label_noise, args.seed))
        dataset = client.post("/v1/datasets", files={"file": ("scans.npz", buffer.getvalue())})
        dataset.raise_for_status()
        spec = base_spec(dataset.json()["id"], args.epochs, args.seed)
        for variant in args.variants.split(","):
            runs[variant] = run_variant(client, spec, variant, args)
            save(args.out, {"epochs": args.epochs, "seed": args.seed, "runs": runs, "cv": None})  # for --show
        best = (runs.get("a") or next(iter(runs.values())))["best"]
        if best is not None and args.folds:
            cv = cross_validate(client, spec, best["params"], args.folds, args.timeout)
        client.close()
    finally:
        service.stop()
    result = {"epochs": args.epochs, "seed": args.seed, "label_noise": args.label_noise, "slots": args.slots,
              "mode": args.mode, "cores": os.cpu_count(), "total_s": time.monotonic() - started, "runs": runs, "cv": cv}
    save(args.out, result)  # before summarising: --show re-reads it
    summary = summarise(runs)
    save(args.out, {**result, "summary": summary})
    show(args, summary, cv)
    print(f"\ntotal {result['total_s']:.0f} s ({args.out})", flush=True)


if __name__ == "__main__":
    main()
