"""SSE clients against a real API process: live delivery, polling against push, and a
finished job's history replayed to many clients at once. Prints figures, asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/events.py                 # 200 clients, 20 jobs, ~2.5 min
    PYTHONPATH=. .venv/bin/python bench/events.py --before PATH   # also the code of another checkout

Per mode (``poll``: events_push off, the hub polls every 0.5 s; ``push``: Postgres
NOTIFY wakes it; ``before``: the checkout at --before, its own hub) one API process
(uvicorn, as tests/servers.py ApiServer starts it) on a scratch database of the local
Postgres. Running jobs are simulated: a thread commits one ``job.epoch`` event per job
at --rate per second, straight into the database, as a worker would. Figures:

- delay from an event's commit (the moment before COMMIT) to its arrival at each client;
- API CPU seconds per second (the uvicorn process, utime + stime) over the window;
- ``GET /healthz`` and ``GET /v1/jobs/{id}`` latency, probed one at a time throughout;
- replay: --replay-clients clients open a finished job of --replay-events events at once:
  time until the last has the terminal event, and the API's peak RSS above its idle RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import EventWriter, copy_jobs, create_database, drop_database, finish  # noqa: E402
from models.enums import JobStatus  # noqa: E402
from tests.servers import ApiServer, api_env, api_key  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
REDIS = "redis://127.0.0.1:6379/13"  # the API connects lazily; nothing is sent in this benchmark


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    mode: str
    delays_ms: list[float] = field(default_factory=list)
    received: int = 0
    expected: int = 0
    cpu_per_s: float = 0.0
    healthz_ms: list[float] = field(default_factory=list)
    job_ms: list[float] = field(default_factory=list)
    replay_s: float = 0.0
    replay_events: int = 0
    replay_rss_mib: float = 0.0
    replay_healthz_ms: list[float] = field(default_factory=list)
    errors: int = 0


class Prober(threading.Thread):
    """One request at a time to each path, every ``every`` seconds, until stopped."""

    def __init__(self, base: str, headers: dict[str, str], paths: dict[str, list[float]], every: float) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, headers=headers, timeout=30)
        self.paths, self.every, self.stopped = paths, every, threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            for path, out in self.paths.items():
                t0 = time.perf_counter()
                try:
                    ok = self.client.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    out.append((time.perf_counter() - t0) * 1000)
                else:
                    self.errors += 1
            self.stopped.wait(self.every)
        self.client.close()


async def stream(client: httpx.AsyncClient, job_id: str, after: int | None, arrivals: list[tuple[int, float]],
                 connected: asyncio.Event | None = None) -> int:
    """Reads one stream to its end (or until cancelled), noting (event id, arrival time)."""
    headers = {"Last-Event-ID": str(after)} if after else {}
    async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200, response.status_code
        if connected is not None:
            connected.set()
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                arrivals.append((int(line[4:]), time.monotonic()))
    return len(arrivals)


def write_events(writer: EventWriter, jobs: list[str], rate: float, stop: threading.Event) -> None:
    """One event per job every 1/rate seconds, the jobs' writes spread evenly over the period."""
    period = 1.0 / (rate * len(jobs))
    start, n = time.monotonic(), 0
    while not stop.is_set():
        writer.add(jobs[n % len(jobs)], epoch=n // len(jobs) + 1)
        n += 1
        stop.wait(max(0.0, start + n * period - time.monotonic()))


async def live_phase(api: ApiServer, headers: dict[str, str], url: str, args: argparse.Namespace,
                     fig: Figures) -> None:
    jobs = copy_jobs(url, args.jobs, tenant="bench", status=JobStatus.running)
    writer = EventWriter(url)
    started = {job_id: writer.add(job_id, 0, type="job.started") for job_id in jobs}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=None, limits=limits) as client:
        arrivals: list[list[tuple[int, float]]] = [[] for _ in range(args.clients)]
        connected = [asyncio.Event() for _ in range(args.clients)]
        tasks = [asyncio.create_task(stream(client, jobs[i % len(jobs)], started[jobs[i % len(jobs)]], arrivals[i],
                                            connected[i])) for i in range(args.clients)]
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), 120)
        stop = threading.Event()
        thread = threading.Thread(target=write_events, args=(writer, jobs, args.rate, stop), daemon=True)
        prober = Prober(api.url, headers, {"/healthz": fig.healthz_ms, f"/v1/jobs/{jobs[0]}": fig.job_ms}, 0.1)
        thread.start()
        await asyncio.sleep(args.warmup)
        first_id = max(writer.committed)  # events after this one are measured
        cpu0, t0 = cpu_seconds(api.process.pid), time.monotonic()
        prober.start()
        await asyncio.sleep(args.seconds)
        fig.cpu_per_s = (cpu_seconds(api.process.pid) - cpu0) / (time.monotonic() - t0)
        stop.set()
        thread.join()
        last_id = max(writer.committed)
        prober.stopped.set()
        prober.join()
        fig.errors += prober.errors
        await asyncio.sleep(2.0)  # the last events' way to the clients
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    committed = writer.committed
    writer.close()
    # The measured events, by job: after the started ones they were written round-robin, in id order.
    first = max(started.values())
    measured: dict[str, set[int]] = {job_id: set() for job_id in jobs}
    for eid in committed:
        if first_id < eid <= last_id:
            measured[jobs[(eid - first - 1) % len(jobs)]].add(eid)
    for i, got in enumerate(arrivals):
        mine = measured[jobs[i % len(jobs)]]
        fig.expected += len(mine)
        for eid, at in got:
            if eid in mine:
                fig.delays_ms.append((at - committed[eid]) * 1000)
                fig.received += 1


async def replay_phase(api: ApiServer, headers: dict[str, str], url: str, args: argparse.Namespace,
                       fig: Figures) -> None:
    (job_id,) = copy_jobs(url, 1, tenant="bench", status=JobStatus.running)
    writer = EventWriter(url)
    writer.many([(job_id, "job.epoch")] * (args.replay_events - 1) + [(job_id, "job.succeeded")])
    writer.close()
    finish(url, job_id)
    pid = api.process.pid
    idle = rss_mib(pid)
    peak = idle
    done = threading.Event()

    def watch_rss() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            done.wait(0.05)

    sampler = threading.Thread(target=watch_rss, daemon=True)
    prober = Prober(api.url, headers, {"/healthz": fig.replay_healthz_ms}, 0.1)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=None, limits=limits) as client:
        arrivals: list[list[tuple[int, float]]] = [[] for _ in range(args.replay_clients)]
        sampler.start()
        prober.start()
        t0 = time.monotonic()
        counts = await asyncio.gather(*(stream(client, job_id, None, arrivals[i])
                                        for i in range(args.replay_clients)))
        fig.replay_s = time.monotonic() - t0
    done.set()
    prober.stopped.set()
    prober.join()
    sampler.join()
    fig.errors += prober.errors
    fig.replay_events = min(counts)
    fig.replay_rss_mib = peak - idle


def run_mode(mode: str, root: Path, args: argparse.Namespace, workdir: Path) -> Figures:
    url = create_database("trainyard_bench_events")
    fig = Figures(mode)
    api = None
    try:
        key = api_key(url, "bench")
        env = api_env(database_url=url, broker_url=REDIS, data_dir=workdir / mode, validator_processes=1,
                      events_poll_interval_s=args.poll_s, events_push=mode == "push")
        print(f"[{time.strftime('%H:%M:%S')}] {mode}: starting the API ({root})", flush=True)
        api = ApiServer(env, workdir / f"{mode}.log", root=root)
        headers = {"Authorization": f"Bearer {key}"}
        asyncio.run(live_phase(api, headers, url, args, fig))
        if args.replay_clients:
            asyncio.run(replay_phase(api, headers, url, args, fig))
    finally:
        if api is not None:
            api.stop()
        drop_database(url)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1.0, help="events per second per job")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per mode")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--poll-s", type=float, default=0.5, help="events_poll_interval_s")
    parser.add_argument("--modes", default="poll,push")
    parser.add_argument("--before", type=Path, help="a checkout to run as mode 'before' (its own hub, polling)")
    parser.add_argument("--replay-clients", type=int, default=200, help="0: no replay phase")
    parser.add_argument("--replay-events", type=int, default=2000)
    args = parser.parse_args()
    modes = [(m, ROOT) for m in args.modes.split(",") if m]
    if args.before:
        modes.insert(0, ("before", args.before.resolve()))
    results = []
    with tempfile.TemporaryDirectory(prefix="trainyard-bench-events-") as tmp:
        for mode, root in modes:
            results.append(run_mode(mode, root, args, Path(tmp)))
    print(f"\n{args.clients} SSE clients on {args.jobs} running jobs, {args.rate:g} event/s per job, "
          f"{args.seconds:g} s measured; replay: {args.replay_clients} clients x {args.replay_events} events")
    header = ("mode", "delay p50 ms", "delay p99 ms", "received", "API CPU s/s", "/healthz p50/p99 ms",
              "GET job p50/p99 ms", "replay s", "replay peak RSS +MiB", "replay /healthz p50/p99 ms", "errors")
    print(" | ".join(header))
    for f in results:
        print(" | ".join([
            f.mode, f"{pct(f.delays_ms, 0.5):.1f}", f"{pct(f.delays_ms, 0.99):.1f}", f"{f.received}/{f.expected}",
            f"{f.cpu_per_s:.3f}", f"{pct(f.healthz_ms, 0.5):.1f}/{pct(f.healthz_ms, 0.99):.1f}",
            f"{pct(f.job_ms, 0.5):.1f}/{pct(f.job_ms, 0.99):.1f}", f"{f.replay_s:.2f}", f"{f.replay_rss_mib:.0f}",
            f"{pct(f.replay_healthz_ms, 0.5):.1f}/{pct(f.replay_healthz_ms, 0.99):.1f}", str(f.errors)]))


if __name__ == "__main__":
    main()
