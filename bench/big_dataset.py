"""A dataset larger than memory is fine: generate >= 4 GB, ingest it, train one epoch, measure memory.

Writes float32 signals of shape (N, 1040) (story 3) chunk by chunk with
``np.lib.format.open_memmap`` (never held in memory), packs them into an
uncompressed ``.npz`` as a client would upload it, then runs the service's own
code in separate processes, each measuring its peak resident memory (VmHWM):

1. ``datastore.ingest.ingest`` (what POST /v1/datasets runs after streaming the
   upload to disk): unpack, check, describe (sampled statistics);
2. ``worker.training.run_training`` (what the Celery task runs) on a job
   registered in a scratch SQLite database: 1 epoch of a small dense model with
   standardized inputs (one chunked statistics pass, then tf.data batches read
   from disk).

Prints dataset bytes, both peaks and throughput; deletes everything at the end.

    .venv/bin/python bench/big_dataset.py [--gigabytes 4.2] [--batch-size 1024] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 1040  # samples per signal (story 3)
CHUNK_ROWS = 8192


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def peak_rss_bytes() -> int:
    """VmHWM of this process: the most resident memory it ever had (file-backed pages included)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generate(directory: Path, samples: int, seed: int = 0) -> tuple[Path, Path]:
    """Noisy sine waves; the target is each wave's frequency (a regression a dense net learns)."""
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(directory / "x.npy", mode="w+", dtype=np.float32, shape=(samples, LENGTH))
    y = np.lib.format.open_memmap(directory / "y.npy", mode="w+", dtype=np.float32, shape=(samples,))
    t = np.linspace(0, 1, LENGTH, dtype=np.float32)
    for start in range(0, samples, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, samples - start)
        freq = rng.uniform(1, 8, rows).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, rows).astype(np.float32)
        block = np.sin(2 * np.pi * freq[:, None] * t[None, :] + phase[:, None])
        x[start:start + rows] = block + rng.normal(0, 0.3, (rows, LENGTH)).astype(np.float32)
        y[start:start + rows] = freq
    x.flush()
    y.flush()
    del x, y
    return directory / "x.npy", directory / "y.npy"


def pack(arrays: list[Path], npz: Path) -> str:
    """An uncompressed .npz (numpy.savez's layout), written by streaming each file; returns its sha256."""
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in arrays:
            archive.write(path, path.name)
            path.unlink()
    digest = hashlib.sha256()
    with npz.open("rb") as f:
        while chunk := f.read(16 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def child(argv: list[str], env: dict[str, str]) -> dict:
    """Run this script in a child process (one measured step) and read its JSON answer."""
    out = subprocess.run([sys.executable, __file__, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"step {argv[0]} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_ingest(npz: Path, staging: Path) -> dict:
    from datastore.ingest import ingest
    from datastore.limits import Limits

    t0 = time.monotonic()
    ingested = ingest(npz, ".npz", staging, Limits(max_unpacked_bytes=64 * 1024**3))
    return {"seconds": time.monotonic() - t0, "peak_rss": peak_rss_bytes(), "description": ingested.description,
            "arrays": ingested.arrays}


def step_train(job_id: str) -> dict:
    from models.db import make_engine, make_session_factory
    from models.settings import get_settings
    from models.tables import Job
    from worker.training import run_training

    settings = get_settings()
    factory = make_session_factory(make_engine(settings.database_dsn))
    before = peak_rss_bytes()
    t0 = time.monotonic()
    run_training(factory, job_id, settings=settings)
    seconds = time.monotonic() - t0
    with factory() as session:
        job = session.get(Job, job_id)
        return {"seconds": seconds, "peak_rss": peak_rss_bytes(), "rss_after_imports": before,
                "status": job.status.value, "error": job.error, "last_metrics": job.last_metrics,
                "splits": {k: v["samples"] for k, v in job.data_summary["splits"].items()}}


def register(data_dir: Path, sha256: str, size: int, ingested: dict, batch_size: int) -> str:
    """A Dataset row for the stored folder and a queued job on it, as POST /v1/datasets and /v1/jobs write them."""
    os.environ["TRAINYARD_DATA_DIR"] = str(data_dir)
    from migrations import upgrade
    from models.db import make_engine, make_session_factory, transaction
    from models.ids import new_id
    from models.spec import JobSpec
    from models.tables import Dataset, Job

    url = f"sqlite:///{data_dir / 'trainyard.db'}"
    upgrade(url)
    spec = JobSpec.model_validate({
        "name": "bench-big-dataset", "dataset": f"ds_{sha256[:24]}",
        "data": {"validation_split": 0.05, "scale_x": "standardize", "scale_y": "standardize"},
        "model": {"input_shape": [LENGTH], "layers": [{"type": "Dense", "units": 32, "activation": "relu"},
                                                      {"type": "Dense", "units": 1}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.001}, "loss": "mse"},
        "fit": {"epochs": 1, "batch_size": batch_size}, "seed": 0,
    })
    factory = make_session_factory(make_engine(url))
    with transaction(factory) as session:
        session.add(Dataset(id=spec.dataset, tenant="bench", sha256=sha256, filename="signals.npz", format="npz",
                            size_bytes=size, path=f"datasets/{sha256}", arrays=ingested["arrays"],
                            description=ingested["description"]))
        job_id = new_id("job")
        session.add(Job(id=job_id, tenant="bench", name=spec.name, spec=spec.model_dump(mode="json"),
                        dataset_ref=spec.dataset, epochs=1, findings=[]))
    return job_id


def gib(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=4.2, help="size of x in GB (10**9 bytes)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    samples = int(args.gigabytes * 1e9 // (LENGTH * 4))
    work = Path(tempfile.mkdtemp(prefix="trainyard-big-", dir=args.dir))
    free = shutil.disk_usage(work).free
    if free < 2.3 * samples * LENGTH * 4:
        raise SystemExit(f"not enough disk at {work}: {gib(free)} free, about {gib(2.3 * samples * LENGTH * 4)} needed")
    data_dir = work / "data"
    env = {**os.environ, "TRAINYARD_DATA_DIR": str(data_dir), "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": str(ROOT)}
    for name in ("TRAINYARD_DATABASE_URL", "TRAINYARD_BROKER_URL", "TRAINYARD_ARTIFACT_ROOT"):
        env.pop(name, None)
    try:
        t0 = time.monotonic()
        x, y = generate(work, samples)
        log(f"generated {samples} signals of {LENGTH} float32: "
            f"x {gib(x.stat().st_size)} in {time.monotonic() - t0:.0f} s")
        npz = work / "signals.npz"
        sha256 = pack([x, y], npz)
        size = npz.stat().st_size
        log(f"packed {npz.name}: {gib(size)}, sha256 {sha256[:12]}...")

        stored = data_dir / "artifacts" / "datasets" / sha256
        ingested = child(["--step-ingest", str(npz), str(stored)], env)
        npz.unlink()
        log(f"ingest (API side): {ingested['seconds']:.0f} s, peak RSS {gib(ingested['peak_rss'])}")

        job_id = register(data_dir, sha256, size, ingested, args.batch_size)
        trained = child(["--step-train", job_id], env)
        if trained["status"] != "succeeded":
            raise SystemExit(f"the job {trained['status']}: {trained['error']}")
        train_samples = trained["splits"]["train"]
        stored_bytes = sum(p.stat().st_size for p in stored.iterdir())
        print(json.dumps({
            "dataset_bytes": stored_bytes, "samples": samples, "batch_size": args.batch_size,
            "ingest": {"seconds": round(ingested["seconds"], 1), "peak_rss_bytes": ingested["peak_rss"]},
            "train": {"seconds": round(trained["seconds"], 1), "peak_rss_bytes": trained["peak_rss"],
                      "rss_after_imports_bytes": trained["rss_after_imports"], "splits": trained["splits"],
                      "samples_per_s": round(train_samples / trained["seconds"]),
                      "last_metrics": trained["last_metrics"]},
        }, indent=1))
        log(f"dataset on disk: {gib(stored_bytes)} ({samples} samples)")
        log(f"worker: 1 epoch (standardize pass + {train_samples} training samples + validation) in "
            f"{trained['seconds']:.0f} s = {train_samples / trained['seconds']:.0f} samples/s, "
            f"{stored_bytes / trained['seconds'] / 1e6:.0f} MB/s of dataset")
        log(f"worker peak RSS {gib(trained['peak_rss'])} = {trained['peak_rss'] / stored_bytes:.0%} of the dataset "
            f"(after importing TensorFlow: {gib(trained['rss_after_imports'])}); "
            f"ingest peak RSS {gib(ingested['peak_rss'])}")
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            log(f"removed {work}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--step-ingest":
        print(json.dumps(step_ingest(Path(sys.argv[2]), Path(sys.argv[3]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--step-train":
        print(json.dumps(step_train(sys.argv[2])))
    else:
        main()
