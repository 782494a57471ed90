"""How much does training through Trainyard cost compared with a plain Keras script?

Runs the same model on the same data for the same epochs (a) as a job of the
service and (b) as bench/plain_fit.py in a fresh Python process, alternately,
then measures submit -> running latency with a warm worker. Prints figures,
asserts nothing about time. See bench/README.md.

    .venv/bin/python bench/overhead.py [--mode embedded|distributed] [--epochs N]
                                       [--repeats R] [--url http://...]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

try:
    from bench.service import BENCH, PYTHON, ROOT, Service, log
except ImportError:  # run as a script: bench/ is on sys.path, not the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.service import BENCH, PYTHON, ROOT, Service, log

FINISHED = {"succeeded", "failed", "cancelled"}


# --------------------------------------------------------------------------- workload

def make_dataset(path: Path, samples: int, seed: int = 0) -> None:
    """28x28x1 float32 images (values 0..~450), 10 classes: each class is a blob
    pattern, shifted by up to 3 pixels, scaled and buried in noise, so a small
    CNN learns it over several epochs without reaching 100 %."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    templates = []
    for _ in range(10):
        img = np.zeros((28, 28))
        for _ in range(3):
            cy, cx = rng.uniform(6, 22, 2)
            s = rng.uniform(2, 5)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        templates.append(img / img.max())
    y = rng.integers(0, 10, samples)
    shifts = rng.integers(-3, 4, (samples, 2))
    x = np.empty((samples, 28, 28), np.float32)
    for i in range(samples):
        x[i] = np.roll(templates[y[i]], tuple(shifts[i]), axis=(0, 1))
    x = x * rng.uniform(0.5, 1.0, (samples, 1, 1)) + rng.normal(0, 0.6, x.shape)
    x = np.clip(x, 0, None) * 127.5
    np.savez(path, x=x[..., None].astype(np.float32), y=y.astype(np.int64))


def workload_spec(dataset: str, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    return {
        "name": "bench-overhead",
        "dataset": dataset,
        "data": {"validation_split": 0.2, "test_split": 0.1, "scale_x": "rescale", "shuffle": True},
        "model": {
            "input_shape": [28, 28, 1],
            "layers": [
                {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Flatten"},
                {"type": "Dense", "units": 64, "activation": "relu"},
                {"type": "Dense", "units": 10, "activation": "softmax"},
            ],
        },
        "compile": {
            "optimizer": {"type": "Adam", "learning_rate": 0.001},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": epochs, "batch_size": batch_size},
        "seed": seed,
        # The default stop_on=["diverging"] only acts on a NaN loss; kept as a user gets it.
    }


def tiny_spec(seed: int) -> dict[str, Any]:
    return {
        "name": "bench-latency",
        "dataset": "builtin:digits",
        "data": {"validation_split": 0.2, "scale_x": "rescale"},
        "model": {
            "input_shape": [8, 8, 1],
            "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
        },
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
        "fit": {"epochs": 1, "batch_size": 256},
        "seed": seed,
    }


CNN = "cnn-57k"
# One case per story: the model sizes these users train (bench/stories/cases.py), on their generated data.
STORIES = ("story1-signature", "story2-position", "story3-signal", "story4-faces-stuck", "story5-scans")
# The service; a plain script with Keras's defaults; a plain script with the service's speed settings.
SIDES = ("service", "plain", "plain_speed")


@dataclass
class Workload:
    name: str
    npz: Path
    spec: dict[str, Any]
    spec_path: Path | None = None
    speed: dict[str, Any] | None = None  # what the service chose (from its first job)
    runs: list[dict[str, Any]] = field(default_factory=list)


def upload(client: httpx.Client, npz: Path) -> str:
    with open(npz, "rb") as f:
        r = client.post("/v1/datasets", files={"file": (npz.name, f, "application/octet-stream")})
    if r.status_code not in (200, 201):
        raise SystemExit(f"POST /v1/datasets answered {r.status_code}: {r.text[:2000]}")
    log(f"dataset {r.json()['id']} ({npz.stat().st_size / 1e6:.1f} MB)")
    return r.json()["id"]


def story_workloads(client: httpx.Client, workdir: Path, epochs: int) -> list[Workload]:
    """Each story's spec as it is (its mistakes included: what these users run), for ``epochs``
    epochs, with no diagnosis stop, so both sides train every epoch."""
    from bench.stories.cases import CASES

    workloads = []
    for case in (c for c in CASES if c.name in STORIES):
        assert case.dataset is not None
        npz = workdir / f"{case.name}.npz"
        np.savez(npz, **case.dataset())
        spec = copy.deepcopy(case.spec)
        # force: a story whose preflight finds an error (story 2) still trains, as the user would insist.
        spec.update(name=f"bench-{case.name}", dataset=upload(client, npz), diagnosis={"stop_on": []}, force=True)
        spec["fit"]["epochs"] = epochs
        workloads.append(Workload(case.name, npz, spec))
    return workloads


# --------------------------------------------------------------------------- the service

def parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def wait_job(client: httpx.Client, job_id: str, poll: float, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in FINISHED:
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {job['status']} after {timeout:.0f} s")
        time.sleep(poll)


def submit(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/jobs", json=spec)
    if r.status_code != 202:
        raise SystemExit(f"POST /v1/jobs answered {r.status_code}: {r.text[:2000]}")
    return r.json()


def epoch_ends_from_db(database_url: str | None, job_id: str) -> list[float] | None:
    """Each epoch's epoch_metrics.recorded_at, in seconds after epoch 1's: the
    worker writes it once per epoch, at the same point of every epoch, so the
    differences are end-to-end epoch periods (every callback included).
    None where the database cannot be read (--url without --database-url)."""
    if not database_url:
        return None
    from sqlalchemy import DateTime, Integer, create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT epoch, recorded_at FROM epoch_metrics WHERE job_id = :id ORDER BY epoch")
                .columns(epoch=Integer, recorded_at=DateTime), {"id": job_id},
            ).all()
    except Exception as exc:  # a schema we do not know: the figure is optional
        log(f"could not read epoch_metrics.recorded_at: {exc!r}")
        return None
    finally:
        engine.dispose()
    stamps = [r.recorded_at if r.recorded_at.tzinfo else r.recorded_at.replace(tzinfo=UTC) for r in rows]
    return [(s - stamps[0]).total_seconds() for s in stamps]


def run_service_job(client: httpx.Client, service: Service, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    cpu0 = service.cpu_seconds()
    t0 = time.monotonic()
    job = submit(client, spec)
    job = wait_job(client, job["id"], poll=1.0, timeout=timeout)
    client_s = time.monotonic() - t0
    cpu1 = service.cpu_seconds()
    if job["status"] != "succeeded":
        raise SystemExit(f"service job {job['id']} {job['status']}: {job.get('error')}")
    curves = client.get(f"/v1/jobs/{job['id']}/curves").raise_for_status().json()
    t = job["timings"]
    started, finished, created = (parse_time(t[k]) for k in ("started_at", "finished_at", "created_at"))
    return {
        "job_id": job["id"],
        "curves": curves,
        "epoch_end_s": epoch_ends_from_db(service.database_url, job["id"]),
        "test_metrics": job.get("test_metrics"),
        # Time the diagnosis monitor took inside the epochs (the verdict's evidence).
        "diagnosis_s": ((job.get("verdict") or {}).get("evidence") or {}).get("diagnosis_s"),
        "splits": {k: v["samples"] for k, v in (job.get("data") or {}).get("splits", {}).items()},
        # What the worker chose (worker/speed.py) and the first epoch's tracing apart from training.
        "speed": (job.get("data") or {}).get("speed"),
        "timing": (job.get("data") or {}).get("timing"),
        "timings_s": {
            "queued": (started - created).total_seconds(),
            "job": (finished - started).total_seconds(),
            "submit_to_observed_finished": client_s,
        },
        # CPU seconds of every process of the service (API, worker, pool child, beat), submit -> seen finished.
        "cpu_s": {"job": cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None},
    }


def run_plain(service: Service, spec_path: Path, npz: Path, out: Path, timeout: float,
              shuffle: str = "keras", speed: dict[str, Any] | None = None) -> dict[str, Any]:
    """``speed``: the service's settings (``steps_per_execution``, ``jit_compile`` for ``model.compile``,
    ``forward_batch_size`` for validation and test); None: Keras's defaults."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cpu0 = service.cpu_seconds()
    t0 = time.monotonic()
    argv = [PYTHON, str(BENCH / "plain_fit.py"), str(spec_path), str(npz), str(out), "--shuffle", shuffle]
    if speed is not None:
        argv += ["--steps-per-execution", str(speed["steps_per_execution"]),
                 "--jit-compile", str(speed["jit_compile"]).lower()]
        if speed.get("forward_batch_size"):
            argv += ["--forward-batch-size", str(speed["forward_batch_size"])]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"plain_fit.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["timings_s"]["process"] = time.monotonic() - t0
    cpu1 = service.cpu_seconds()
    # What the idle service burnt meanwhile: it competes with the plain script for the CPUs.
    result["service_idle_cpu_per_s"] = (cpu1 - cpu0) / result["timings_s"]["process"] if cpu0 is not None else None
    return result


# --------------------------------------------------------------------------- figures

def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def steady(values: list[float]) -> list[float]:
    """Epochs 2..N: epoch 1 includes tracing the train and validation functions."""
    return list(values[1:])


def periods(ends: list[float] | None) -> list[float]:
    """End-to-end time of epochs 2..N, from consecutive epoch ends."""
    if not ends:
        return []
    return [b - a for a, b in zip(ends, ends[1:])]


CURVE_KEYS = ("loss", "val_loss")


def compare_curves(a: dict[str, list[Any]], b: dict[str, list[Any]],
                   keys: tuple[str, ...] = CURVE_KEYS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        xs, ys = a.get(key) or [], b.get(key) or []
        if len(xs) != len(ys) or not xs:
            out[key] = {"epochs": [len(xs), len(ys)], "max_abs": None, "max_rel": None}
            continue
        diffs = [abs(float(x) - float(y)) if x is not None and y is not None else math.inf for x, y in zip(xs, ys)]
        rels = [d / max(abs(float(y)), 1e-12) if y is not None else math.inf for d, y in zip(diffs, ys)]
        out[key] = {"max_abs": max(diffs), "max_rel": max(rels), "abs": diffs}
    return out


def curves_match(comparisons: list[dict[str, Any]], tol: float) -> bool:
    return all(c[k]["max_rel"] is not None and c[k]["max_rel"] < tol for c in comparisons for k in c)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: float | None, unit: str = " s", digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def summarize(runs: list[dict[str, Any]], latency: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    svc = [r["service"] for r in runs]
    pln = [r["plain"] for r in runs]
    rows: dict[str, Any] = {}
    for name, get in (
        ("epoch_duration_s", lambda r: steady(r["curves"]["duration_s"])),
        ("epoch_period_s", lambda r: periods(r["epoch_end_s"])),
    ):
        s_all = [v for r in svc for v in get(r)]
        p_all = [v for r in pln for v in get(r)]
        pairs = [ratio(median(get(s)), median(get(p))) for s, p in zip(svc, pln)]
        rows[name] = {
            "spread_pct": {"service": _spread([median(get(r)) for r in svc]),
                           "plain": _spread([median(get(r)) for r in pln])},
            "service": median(s_all), "plain": median(p_all), "ratio": ratio(median(s_all), median(p_all)),
            "ratio_per_repeat": pairs,
            "service_per_repeat": [median(get(r)) for r in svc], "plain_per_repeat": [median(get(r)) for r in pln],
        }
    s_job = [r["timings_s"]["job"] for r in svc]
    p_job = [r["timings_s"]["job"] for r in pln]
    s_cpu = [r["cpu_s"]["job"] for r in svc if r["cpu_s"]["job"] is not None]
    p_cpu = [r["cpu_s"]["job"] for r in pln]
    idle = [r["service_idle_cpu_per_s"] for r in pln if r.get("service_idle_cpu_per_s") is not None]
    rows["job_cpu_s"] = {"service": median(s_cpu), "plain": median(p_cpu), "ratio": ratio(median(s_cpu), median(p_cpu)),
                         "service_per_repeat": s_cpu, "plain_per_repeat": p_cpu,
                         "service_idle_cpu_per_s": median(idle)}
    diag = [(r["diagnosis_s"], sum(r["curves"]["duration_s"])) for r in svc if r.get("diagnosis_s") is not None]
    rows["diagnosis_share"] = {"service": median([d / e for d, e in diag if e]) if diag else None}
    rows["job_wall_s"] = {"service": median(s_job), "plain": median(p_job),
                          "ratio": ratio(median(s_job), median(p_job)),
                          "service_per_repeat": s_job, "plain_per_repeat": p_job}
    vs_plain = [compare_curves(s["curves"], p["curves"]) for s, p in zip(svc, pln)]
    svc_vs_svc = [compare_curves(s["curves"], svc[0]["curves"]) for s in svc[1:]]
    plain_vs_plain = [compare_curves(p["curves"], pln[0]["curves"]) for p in pln[1:]]
    rows["curves"] = {
        "tolerance_rel": args.tolerance,
        "match": curves_match(vs_plain, args.tolerance),
        "max_abs": {k: _worst(vs_plain, k, "max_abs") for k in CURVE_KEYS},
        "max_rel": {k: _worst(vs_plain, k, "max_rel") for k in CURVE_KEYS},
        "service_vs_plain": vs_plain,
        "service_repeatable": curves_match(svc_vs_svc, args.tolerance) if svc_vs_svc else None,
        "plain_repeatable": curves_match(plain_vs_plain, args.tolerance) if plain_vs_plain else None,
    }
    rows["latency_s"] = latency
    return rows


def workload_figures(w: Workload, tolerance: float) -> dict[str, Any]:
    """Median steady epoch (epochs 2..N) of each side, the service's ratio to each plain script
    (over all repeats, and per repeat), and how far the loss curves lie apart."""
    def epochs(side: str) -> list[float]:
        return [v for r in w.runs for v in steady(r[side]["curves"]["duration_s"])]

    def per_repeat(side: str) -> list[float | None]:
        def epoch(run: dict[str, Any]) -> float | None:
            return median(steady(run["curves"]["duration_s"]))
        return [ratio(epoch(r["service"]), epoch(r[side])) for r in w.runs]

    def apart(side: str) -> float:
        return max(_worst([compare_curves(r["service"]["curves"], r[side]["curves"])], k, "max_rel")
                   for r in w.runs for k in CURVE_KEYS)

    def cpu_of(side: str, run: dict[str, Any]) -> list[float]:
        """CPU seconds of the training process over epochs 2..N: other load on the machine moves it far
        less than the wall time (empty for a service that does not report it)."""
        values = (run.get("timing") or {}).get("epoch_cpu_s") or [] if side == "service" else run["epoch_cpu_s"]
        return steady(values)

    def cpu(side: str) -> float | None:
        return median([v for r in w.runs for v in cpu_of(side, r[side])])

    def period(side: str) -> float | None:
        """Epoch end -> next epoch end (every epoch-end callback included: probe, checkpoint, records)."""
        return median([v for r in w.runs for v in periods(r[side].get("epoch_end_s"))])

    first = w.runs[0]
    timing = [r["service"].get("timing") or {} for r in w.runs]
    return {
        "params": first["plain"].get("params"),
        "train_samples": first["plain"]["splits"].get("train"),
        "batch_size": w.spec["fit"]["batch_size"],
        "speed": w.speed,
        "epoch_s": {side: median(epochs(side)) for side in SIDES},
        "ratio": {side: ratio(median(epochs("service")), median(epochs(side))) for side in SIDES[1:]},
        "ratio_per_repeat": {side: per_repeat(side) for side in SIDES[1:]},
        "period_s": {side: period(side) for side in SIDES},
        "epoch_cpu_s": {side: cpu(side) for side in SIDES},
        "cpu_ratio_per_repeat": {side: [ratio(median(cpu_of("service", r["service"])), median(cpu_of(side, r[side])))
                                        for r in w.runs] for side in SIDES[1:]},
        "cpu_ratio": {side: ratio(cpu("service"), cpu(side)) for side in SIDES[1:]},
        "period_ratio": {side: ratio(period("service"), period(side)) for side in SIDES[1:]},
        "curves_max_rel": {side: apart(side) for side in SIDES[1:]},
        "curves_match": {side: apart(side) < tolerance for side in SIDES[1:]},
        "warmup_s": median([t["warmup_s"] for t in timing if t.get("warmup_s") is not None]),
        "train_s": median([t["train_s"] for t in timing if t.get("train_s") is not None]),
    }


def print_workloads(figures: dict[str, dict[str, Any]], config: dict[str, Any]) -> None:
    print(f"Service epoch time over plain model.fit - {config['mode']} mode, {config['repeats']} repeats "
          f"interleaved, {config['cpus']} CPUs; epochs 2..N (stories {config['story_epochs']}, CNN {config['epochs']})")
    print(f"{'workload':20} {'params':>7} {'batch':>5} {'k':>3} {'service':>8} {'plain':>8} {'plain k':>8} "
          f"{'/plain':>7} {'/plain k':>8} {'warmup':>7}  curves vs plain | plain k (max rel)")
    for name, f in figures.items():
        e, r, c = f["epoch_s"], f["ratio"], f["curves_max_rel"]
        k = (f["speed"] or {}).get("steps_per_execution")
        print(f"{name:20} {f['params'] or 0:>7} {f['batch_size']:>5} {k or '?':>3} {fmt(e['service'], '', 3):>8} "
              f"{fmt(e['plain'], '', 3):>8} {fmt(e['plain_speed'], '', 3):>8} {fmt(r['plain'], '', 2):>7} "
              f"{fmt(r['plain_speed'], '', 2):>8} {fmt(f['warmup_s'], '', 2):>7}  "
              f"{c['plain']:.1e} | {c['plain_speed']:.1e}")
        print(f"{'':20} per repeat /plain " + " ".join(fmt(x, "", 2) for x in f["ratio_per_repeat"]["plain"])
              + ", /plain k " + " ".join(fmt(x, "", 2) for x in f["ratio_per_repeat"]["plain_speed"]))
        pe, pr = f["period_s"], f["period_ratio"]
        print(f"{'':20} epoch period (end->end) service {fmt(pe['service'], '', 3)}, plain {fmt(pe['plain'], '', 3)}, "
              f"plain k {fmt(pe['plain_speed'], '', 3)}: /plain {fmt(pr['plain'], '', 2)}, "
              f"/plain k {fmt(pr['plain_speed'], '', 2)}; forward batch {(f['speed'] or {}).get('forward_batch_size')}")
        c, cr = f["epoch_cpu_s"], f["cpu_ratio"]
        print(f"{'':20} epoch CPU service {fmt(c['service'], '', 3)}, plain {fmt(c['plain'], '', 3)}, "
              f"plain k {fmt(c['plain_speed'], '', 3)}: /plain {fmt(cr['plain'], '', 2)}, "
              f"/plain k {fmt(cr['plain_speed'], '', 2)}; per repeat /plain "
              + " ".join(fmt(x, "", 2) for x in f["cpu_ratio_per_repeat"]["plain"]) + ", /plain k "
              + " ".join(fmt(x, "", 2) for x in f["cpu_ratio_per_repeat"]["plain_speed"]))
    print()


def _worst(comparisons: list[dict[str, Any]], key: str, field: str) -> float:
    values = [c[key][field] for c in comparisons]
    return math.inf if any(v is None for v in values) else max(values)


def _spread(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return 100 * (max(xs) - min(xs)) / statistics.median(xs) if len(xs) > 1 else None


def check(ok: bool | None) -> str:
    return "" if ok is None else ("OK" if ok else "MISSED")


def row(label: str, service: str, plain: str, ratio_: str, note: str = "") -> None:
    print(f"{label:40} {service:>10} {plain:>10} {ratio_:>7}  {note}".rstrip())


def print_table(config: dict[str, Any], summary: dict[str, Any]) -> None:
    d, p, j, c, lat = (summary[k] for k in ("epoch_duration_s", "epoch_period_s", "job_wall_s", "curves", "latency_s"))
    print()
    print(f"Trainyard overhead - {config['mode']} mode, {config['epochs']} epochs x {config['repeats']} repeats, "
          f"{config['samples']} samples 28x28x1 (train/val/test {config['splits']}), batch {config['batch_size']}, "
          f"seed {config['seed']}, {config['cpus']} CPUs")
    row("", "service", "plain", "ratio", "goal")
    row("epoch time (duration_s, median e2..N)", fmt(d["service"]), fmt(d["plain"]), fmt(d["ratio"], ""),
        f"<= 1.05 {check(d['ratio'] is not None and d['ratio'] <= 1.05)}")
    share = summary.get("diagnosis_share", {}).get("service")
    if share is not None:
        print(f"{'  of which the diagnosis monitor':40} {share:10.2%}   (goal < 5 % of epoch time)")
    print(f"{'  per repeat (service/plain)':40} "
          + "  ".join(f"{fmt(s, '', 2)}/{fmt(q, '', 2)}={fmt(r, '', 3)}"
                      for s, q, r in zip(d["service_per_repeat"], d["plain_per_repeat"], d["ratio_per_repeat"])))
    spread = [_spread(d["service_per_repeat"]), _spread(d["plain_per_repeat"])]
    if len(d["service_per_repeat"]) > 1:
        row("  noise: spread of per-repeat medians", fmt(spread[0], " %", 1), fmt(spread[1], " %", 1), "",
            "(max-min over median; a ratio inside this is noise)")
    if p["service"] is not None:
        row("epoch period (end->end, median e2..N)", fmt(p["service"]), fmt(p["plain"]), fmt(p["ratio"], ""))
    else:
        row("epoch period (end->end, median e2..N)", "n/a", fmt(p["plain"]), "", "(database not readable)")
    row("job wall (load -> model saved, median)", fmt(j["service"]), fmt(j["plain"]), fmt(j["ratio"], ""))
    cpu = summary["job_cpu_s"]
    row("job CPU time (all processes, median)", fmt(cpu["service"]), fmt(cpu["plain"]), fmt(cpu["ratio"], ""),
        f"(idle service: {fmt(cpu['service_idle_cpu_per_s'], ' CPU-s/s')})" if cpu["service"] is not None else "")
    verdict = "match" if c["match"] else "DIFFER"
    print(f"{'loss curves, same seed':40} {verdict}: max |diff| loss {c['max_abs']['loss']:.2e}, "
          f"val_loss {c['max_abs']['val_loss']:.2e} "
          f"(max rel {max(c['max_rel'].values()):.2e}, tolerance {c['tolerance_rel']:.0e})")
    if not c["match"]:
        for i, comp in enumerate(c["service_vs_plain"], 1):
            for key in ("loss", "val_loss"):
                diffs = comp[key].get("abs")
                print(f"{'':42}repeat {i} {key:8} |diff| per epoch: "
                      + (" ".join(f"{x:.2e}" for x in diffs) if diffs else str(comp[key])))
        print(f"{'':42}service repeatable: {c['service_repeatable']}, plain repeatable: {c['plain_repeatable']}")
        if c["service_repeatable"] and c["plain_repeatable"]:
            other = "tfdata" if config.get("plain_shuffle") == "keras" else "keras"
            print(f"{'':42}both deterministic: the batch order differs? try --plain-shuffle {other} (bench/README.md)")
    if lat.get("samples"):
        print(f"{'submit->running (started-created), K=' + str(len(lat['samples'])):40} median {fmt(lat['median'])}, "
              f"max {fmt(lat['max'])}  (goal: median < 1 s {check(lat['median'] < 1.0)})")
    print()


# --------------------------------------------------------------------------- main

def measure_latency(client: httpx.Client, k: int, jitter: float, seed: int) -> dict[str, Any]:
    log("latency: warm-up job")
    warm = wait_job(client, submit(client, tiny_spec(0))["id"], poll=0.05, timeout=300)
    if warm["status"] != "succeeded":
        raise SystemExit(f"latency warm-up job {warm['status']}: {warm.get('error')}")
    samples, posts, jobs = [], [], []
    pauses = random.Random(seed)
    for i in range(k):
        # A random pause, so the submissions do not lock onto the phase of a polling worker.
        time.sleep(pauses.uniform(0, jitter))
        t0 = time.monotonic()
        job = submit(client, tiny_spec(i + 1))
        posts.append(time.monotonic() - t0)
        job = wait_job(client, job["id"], poll=0.05, timeout=300)
        t = job["timings"]
        if t["started_at"] is None:
            raise SystemExit(f"latency job {job['id']} {job['status']} without starting: {job.get('error')}")
        samples.append((parse_time(t["started_at"]) - parse_time(t["created_at"])).total_seconds())
        jobs.append(job["id"])
    log(f"latency: {', '.join(f'{s:.3f}' for s in samples)} s")
    return {"samples": samples, "median": median(samples), "max": max(samples), "jitter_s": jitter,
            "post_request_s": posts, "job_ids": jobs}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["embedded", "distributed"], default="embedded")
    ap.add_argument("--url", help="use this running service instead of starting one (--mode is then only a label)")
    ap.add_argument("--database-url",
                    help="with --url: the service's database (SQLAlchemy URL), to read epoch end times")
    ap.add_argument("--redis-db", type=int,
                    help="distributed mode: the Redis database to use as broker (default: an empty one)")
    ap.add_argument("--workload", choices=["cnn", "stories", "all"], default="all",
                    help="the 57k-parameter CNN, the five stories' models on their generated data, or both")
    ap.add_argument("--only", help="comma-separated workload names (cnn-57k, story1-signature, ...)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--story-epochs", type=int, default=4, help="epochs of each story's job (their own: 6-25)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--latency-jobs", type=int, default=10, metavar="K")
    ap.add_argument("--latency-jitter", type=float, default=1.0, metavar="S",
                    help="random pause (0..S s) before each latency job is submitted")
    ap.add_argument("--plain-shuffle", choices=["keras", "tfdata"], default="tfdata",
                    help="the plain script's batch order: a seeded tf.data shuffle (as the worker, which feeds fit "
                         "from tf.data, does) or fit(x, y, shuffle=True)")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="relative loss difference still called a match")
    ap.add_argument("--out", type=Path, default=BENCH / "out" / "overhead.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data, service log)")
    args = ap.parse_args(argv)
    if min(args.epochs, args.story_epochs) < 2:
        ap.error("--epochs and --story-epochs must be at least 2: epoch 1 (tracing) is left out of the epoch figures")

    started = datetime.now(UTC).isoformat()
    workdir = Path(tempfile.mkdtemp(prefix="trainyard-bench-"))
    service = Service(args, workdir)
    t_start = time.monotonic()
    try:
        service.start()
        client = httpx.Client(base_url=service.url, timeout=120, headers=service.auth_headers())
        workloads = []
        if args.workload in ("cnn", "all"):
            npz = workdir / "bench-data.npz"
            log(f"generating {args.samples} samples of 28x28x1 float32 -> {npz}")
            make_dataset(npz, args.samples)
            workloads.append(Workload(CNN, npz, workload_spec(upload(client, npz), args.epochs, args.batch_size,
                                                              args.seed)))
        if args.workload in ("stories", "all"):
            workloads += story_workloads(client, workdir, args.story_epochs)
        if args.only:
            workloads = [w for w in workloads if w.name in args.only.split(",")]
        for w in workloads:
            w.spec_path = workdir / f"{w.name}.json"
            w.spec_path.write_text(json.dumps(w.spec))

        # One short job first, so the worker's first-job costs are not in repeat 1.
        log("warm-up job")
        warm = wait_job(client, submit(client, tiny_spec(0))["id"], poll=0.2, timeout=300)
        if warm["status"] != "succeeded":
            raise SystemExit(f"warm-up job {warm['status']}: {warm.get('error')}\n{service.log_tail()}")

        # Interleaved: each repeat runs every workload's three runs back to back, in an order that
        # rotates, so the shared machine's load drifts over all of them alike. The first repeat
        # runs the service first: the plain script with the same settings takes the job's.
        for i in range(args.repeats):
            for w in workloads:
                run: dict[str, Any] = {}
                for what in SIDES[i % 3:] + SIDES[:i % 3]:
                    timeout = 300 + 60 * w.spec["fit"]["epochs"]
                    if what == "service":
                        run[what] = run_service_job(client, service, w.spec, timeout)
                        w.speed = w.speed or run[what]["speed"]
                    else:
                        run[what] = run_plain(service, w.spec_path, w.npz, workdir / f"{w.name}-{what}-{i}.json",
                                              timeout, args.plain_shuffle, w.speed if what == "plain_speed" else None)
                    curves = run[what]["curves"]
                    log(f"repeat {i + 1}/{args.repeats} {w.name} {what:11}: epochs "
                        + " ".join(f"{x:.2f}" for x in curves["duration_s"]) + " s, loss "
                        + " ".join(f"{x:.4f}" for x in curves["loss"]))
                w.runs.append(run)

        latency = {}
        if args.latency_jobs > 0:
            latency = measure_latency(client, args.latency_jobs, args.latency_jitter, args.seed)
        client.close()
    except BaseException:
        if service.proc is not None:
            print(f"--- service log (tail) ---\n{service.log_tail()}", file=sys.stderr)
        raise
    finally:
        service.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    by_name = {w.name: w for w in workloads}
    figures = {w.name: workload_figures(w, args.tolerance) for w in workloads}
    runs = by_name[CNN].runs if CNN in by_name else []
    summary = summarize(runs, latency, args) if runs else {}
    splits = runs[0]["plain"]["splits"] if runs else {}
    config = {
        "mode": args.mode,
        "url": args.url, "epochs": args.epochs, "repeats": args.repeats, "samples": args.samples,
        "batch_size": args.batch_size, "seed": args.seed, "plain_shuffle": args.plain_shuffle,
        "latency_jobs": args.latency_jobs,
        "splits": "/".join(str(splits.get(k, 0)) for k in ("train", "validation", "test")),
        "cpus": os.cpu_count(), "python": platform.python_version(), "host": platform.node(),
        "workload": args.workload, "story_epochs": args.story_epochs,
        "plain_versions": workloads[0].runs[0]["plain"].get("versions"),
        "started": started, "runtime_s": time.monotonic() - t_start,
        "serve_left_worker_running_on_sigterm": service.orphaned_worker,
    }
    if summary:
        print_table(config, summary)
    print_workloads(figures, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"config": config, "summary": summary, "workloads": figures,
           "runs": {w.name: w.runs for w in workloads}, "specs": {w.name: w.spec for w in workloads}}
    args.out.write_text(json.dumps(out, indent=1, default=str))
    log(f"figures written to {args.out} (total {config['runtime_s']:.0f} s)")


if __name__ == "__main__":
    main()
