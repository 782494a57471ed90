"""The faults an operator meets, one function each. Every scenario submits real jobs,
breaks one thing for real (a signal, a server stopped), and returns what it measured."""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.fault_kit.cluster import Cluster
from bench.fault_kit.measure import Probe, audit, first_epoch_after, job_state, now, wait_until
from tests.servers import PostgresServer, RedisServer

FINISH_TIMEOUT_S = 900.0
UPLOAD_GRACE_S = 3.0  # TRAINYARD_UPLOAD_GRACE_S of the bench's cluster


def digits_job(epochs: int, name: str) -> dict[str, Any]:
    """The README's digits CNN, without early stopping so that every epoch runs."""
    return {
        "name": name, "dataset": "builtin:digits", "seed": 42,
        "data": {"validation_split": 0.2, "test_split": 0.1, "scale_x": "rescale"},
        "model": {"input_shape": [8, 8, 1], "layers": [
            {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
            {"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"},
            {"type": "Dense", "units": 32, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.003},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": epochs, "batch_size": 32},
    }


@dataclass
class Context:
    cluster: Cluster
    pg: PostgresServer
    broker: RedisServer
    database_url: str  # the service's database on ``pg``
    epochs: int

    @property
    def libpq_url(self) -> str:
        """``database_url`` for psycopg itself (the bench reads the tables directly)."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Result:
    scenario: str
    jobs: int
    lost: int
    missing: int
    duplicated: int
    terminal_events_extra: int
    server_errors: int
    unavailable: int
    running_again_s: float | None
    finish_s: float | None
    notes: list[str] = field(default_factory=list)


def submit(ctx: Context, name: str, epochs: int | None = None) -> str:
    response = httpx.post(f"{ctx.cluster.url}/v1/jobs", headers=ctx.cluster.headers,
                          json=digits_job(epochs or ctx.epochs, name), timeout=120)
    response.raise_for_status()
    return response.json()["id"]


def wait_epoch(ctx: Context, job_id: str, epoch: int) -> None:
    if not wait_until(lambda: job_state(ctx.libpq_url, job_id)[1] >= epoch, FINISH_TIMEOUT_S):
        raise SystemExit(f"job {job_id} never reached epoch {epoch}")


def finished(ctx: Context, job_ids: list[str]) -> bool:
    return all(job_state(ctx.libpq_url, j)[0] in ("succeeded", "failed", "cancelled") for j in job_ids)


def conclude(ctx: Context, scenario: str, job_ids: list[str], fault_at: Any, probe: Probe,
             notes: list[str] | None = None, *, again_from: Any = None, again_jobs: list[str] | None = None) -> Result:
    """``again_from``/``again_jobs``: measure "running again" from another moment (the old
    worker's exit) or over some of the jobs (those that were waiting in the queue)."""
    done = wait_until(lambda: finished(ctx, job_ids), FINISH_TIMEOUT_S, step=0.5)
    audits = [audit(ctx.libpq_url, j) for j in job_ids]
    lost = sum(1 for a in audits if a.status != "succeeded")
    finish = max((a.finished_at for a in audits if a.finished_at), default=None)
    notes = list(notes or [])
    if not done:
        notes.append(f"not all finished within {FINISH_TIMEOUT_S:.0f} s")
    notes += [f"{a.job_id}: {a.status}" for a in audits if a.status != "succeeded"]
    return Result(
        scenario, len(job_ids), lost, sum(a.missing for a in audits), sum(a.duplicated for a in audits),
        sum(max(0, a.terminal_events - 1) for a in audits), probe.server_errors, probe.unavailable,
        first_epoch_after(ctx.libpq_url, again_jobs or job_ids, again_from or fault_at),
        (finish - fault_at).total_seconds() if finish and done else None, notes,
    )


def pool_child_kill(ctx: Context) -> Result:
    job = submit(ctx, "pool-child-kill")
    wait_epoch(ctx, job, 8)
    child = ctx.cluster.pool_child()
    assert child is not None, "no pool child found"
    with Probe(ctx.cluster.url, ctx.cluster.headers, [job]) as probe:
        fault_at = now()
        os.kill(child, signal.SIGKILL)
        return conclude(ctx, "pool child SIGKILL", [job], fault_at, probe)


def worker_kill(ctx: Context) -> Result:
    job = submit(ctx, "worker-kill")
    wait_epoch(ctx, job, 8)
    with Probe(ctx.cluster.url, ctx.cluster.headers, [job]) as probe:
        fault_at = now()
        ctx.cluster.kill("worker")
        ctx.cluster.start_worker()  # what compose's restart policy or systemd does
        return conclude(ctx, "whole worker SIGKILL (+ restart)", [job], fault_at, probe)


def sigterm_then_kill(ctx: Context) -> Result:
    """`docker stop`: SIGTERM, then SIGKILL after 10 s if still running, then a new worker."""
    job = submit(ctx, "sigterm")
    wait_epoch(ctx, job, 8)
    notes = []
    with Probe(ctx.cluster.url, ctx.cluster.headers, [job]) as probe:
        fault_at = now()
        ctx.cluster.signal_group("worker", signal.SIGTERM)
        exited = wait_until(lambda: not ctx.cluster.group_alive("worker"), 10.0)
        notes.append(f"worker exited {'by itself' if exited else 'only by SIGKILL'} after SIGTERM; "
                     "running again is counted from its exit")
        if not exited:
            ctx.cluster.kill("worker")
        exit_at = now()
        ctx.cluster.start_worker()
        return conclude(ctx, "worker SIGTERM, SIGKILL after 10 s", [job], fault_at, probe, notes, again_from=exit_at)


def redis_restart(ctx: Context, *, aof: bool) -> Result:
    client = redis.Redis(port=ctx.broker.port)
    if aof:  # turned on at run time, so the restart below finds the file
        client.config_set("appendonly", "yes")
        wait_until(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, 30)
    long_job = submit(ctx, "redis-long")
    queued = [submit(ctx, f"redis-queued-{i}", epochs=5) for i in range(4)]
    wait_epoch(ctx, long_job, 4)
    jobs = [long_job, *queued]
    with Probe(ctx.cluster.url, ctx.cluster.headers, jobs) as probe:
        fault_at = now()
        ctx.broker.kill()
        time.sleep(1.0)
        ctx.broker.appendonly = aof  # with AOF it comes back with what it held
        ctx.broker.start()
        # "Running again": the first epoch of a job that was waiting in the queue when Redis died.
        result = conclude(ctx, f"Redis restart ({'AOF' if aof else 'no persistence'})", jobs, fault_at, probe,
                          again_jobs=queued)
    order = _start_order(ctx, queued)
    result.notes.append(f"queued jobs started in submission order: {order == sorted(order)}")
    if aof:
        redis.Redis(port=ctx.broker.port).config_set("appendonly", "no")
    return result


def _start_order(ctx: Context, job_ids: list[str]) -> list[int]:
    import psycopg

    with psycopg.connect(ctx.libpq_url, autocommit=True) as conn:
        rows = conn.execute("SELECT id FROM jobs WHERE id = ANY(%s) ORDER BY started_at", (job_ids,)).fetchall()
    return [job_ids.index(r[0]) for r in rows]


def postgres_outage(ctx: Context, *, seconds: float) -> Result:
    job = submit(ctx, f"pg-{seconds:.0f}s")
    wait_epoch(ctx, job, 8)
    with Probe(ctx.cluster.url, ctx.cluster.headers, [job]) as probe:
        fault_at = now()
        ctx.pg.stop("fast")
        time.sleep(seconds)
        ctx.pg.start()
        name = "Postgres restart (fast)" if seconds < 1 else f"Postgres outage {seconds:.0f} s"
        return conclude(ctx, name, [job], fault_at, probe)


def api_kill_during_upload(ctx: Context, size_mb: int = 300) -> Result:
    """SIGKILL the API while it stores an upload, restart it, and count what was left on disk."""
    uploads = Path(ctx.cluster.env["TRAINYARD_DATA_DIR"]) / "artifacts"
    body = SlowZeros(size_mb * 1024 * 1024)

    def upload() -> None:
        files = {"file": ("big.npz", body, "application/octet-stream")}
        try:
            httpx.post(f"{ctx.cluster.url}/v1/datasets", headers=ctx.cluster.headers, files=files, timeout=120)
        except (httpx.HTTPError, OSError):
            pass  # the server died under it: expected

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(upload)
        # Starlette spools the body to an unlinked temporary file first; the API writes its
        # own partial file while it copies and checks the upload: kill it then.
        wait_until(lambda: _leftovers(uploads) > 0, 180, step=0.02)
        leftovers_before = _leftovers(uploads)
        ctx.cluster.kill("api")
        future.result()
    killed_with = _leftovers(uploads)
    time.sleep(UPLOAD_GRACE_S + 1)  # a partial file younger than the grace may be an upload in progress
    ctx.cluster.start_api()
    time.sleep(2.0)
    after = _leftovers(uploads)
    notes = [f"partial files during the upload: {leftovers_before}, after the kill: {killed_with}, "
             f"after the API restarted: {after}"]
    return Result("API SIGKILL during an upload", 0, 0, 0, 0, 0, 0, 0, None, None,
                  [*notes, f"LEFT ON DISK: {after}" if after else "nothing left on disk"])


class SlowZeros:
    """A file-like upload body that trickles zeros, so the API is killed mid-way."""

    def __init__(self, size: int) -> None:
        self.size, self.sent = size, 0

    def read(self, n: int = -1) -> bytes:
        n = min(self.size - self.sent, 1024 * 1024 if n is None or n < 0 else n)
        self.sent += n
        return b"\0" * n


def _leftovers(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.name.endswith((".part", ".staging")))


def burst(ctx: Context, requests: int = 200) -> Result:
    """200 concurrent submits: 100 distinct Idempotency-Keys, 10 keys sent 10 times each. The
    client retries a 429 that says when (Retry-After), as a well-behaved client does."""
    from tests.burst import burst_keys, fire

    keys = burst_keys(requests, once=requests // 2, repeated=10, tag="faults")
    answers = fire(ctx.cluster.url, ctx.cluster.key, keys, digits_job(1, "burst"), timeout=300, retries=100)
    ids = {a.job_id for a in answers if a.job_id}
    for job in ids:  # they would train for a long time: cancel them
        httpx.post(f"{ctx.cluster.url}/v1/jobs/{job}/cancel", headers=ctx.cluster.headers, timeout=60)
    first = Counter(a.first_status for a in answers)
    final = Counter(a.status for a in answers)
    errors = sum(n for status, n in first.items() if status >= 500 or status == 0)
    latencies = sorted(a.seconds for a in answers)
    expected = len(set(keys))
    notes = [f"first answers {dict(sorted(first.items()))}, final answers {dict(sorted(final.items()))} "
             f"(up to {max(a.attempts for a in answers)} attempts; {sum(a.dropped for a in answers)} kept-alive "
             "connections closed by the server's idle timeout as a retry went out, sent again)",
             f"jobs created {len(ids)} (expected {expected}); time to the final answer p50 "
             f"{statistics.median(latencies):.2f} s, max {latencies[-1]:.2f} s"]
    return Result(f"burst of {requests} POST /v1/jobs", expected, expected - len(ids), 0, 0, 0, errors,
                  first.get(503, 0), None, None, notes)
