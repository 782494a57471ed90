"""GET /v1/jobs/{id} and the job list at fixed request rates, with 100,000 jobs in Postgres.
Prints p50/p99 latency, the rate achieved and errors per rate; asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/api_load.py                    # 100, 200, 500, 1000 req/s, ~3 min
    PYTHONPATH=. .venv/bin/python bench/api_load.py --rates 100,300 --seconds 20

A Postgres of its own (tests/servers.py PostgresServer: a temporary cluster on a spare
port, so the shared server is not loaded), 100,000 jobs written by COPY: the oldest
10,000 the benchmark tenant's (1,000 failed), the rest another tenant's; one API process
(uvicorn, as ApiServer starts it). A request still waiting for a connection --timeout
after it was due is counted as an error and not sent, so an overloaded run ends.

Open loop: request i is due at start + i / rate whatever the earlier ones did, and
its latency runs from that moment, so a server that falls behind shows it in the
figures instead of slowing the client down (no coordinated omission). The client is
a plain asyncio HTTP/1.1 keep-alive client over --connections sockets: httpx cannot
send 1,000 requests a second from one core. On this 2-core machine the client takes
part of the CPU the API would have; the "achieved" column says what was sent.

The list mixes the first page, a page after a random cursor and status=failed pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import copy_jobs  # noqa: E402
from models.enums import JobStatus  # noqa: E402
from tests.servers import ApiServer, PostgresServer, api_env, api_key  # noqa: E402

REDIS = "redis://127.0.0.1:6379/13"  # the API connects lazily; nothing is sent in this benchmark


@dataclass
class Run:
    name: str
    rate: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    seconds: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Connection:
    """One keep-alive HTTP/1.1 connection; responses carry Content-Length (FastAPI's JSON)."""

    def __init__(self, port: int, auth: str) -> None:
        self.port, self.auth = port, auth
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {self.auth}\r\n\r\n".encode())
        try:
            status = int((await self.reader.readline()).split()[1])
            length = 0
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await self.reader.readexactly(length)
        except (IndexError, ValueError, asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise ConnectionError("broken response") from None
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def open_loop(port: int, auth: str, path: Callable[[], str], run: Run, seconds: float, connections: int,
                    timeout: float) -> None:
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(port, auth))

    async def one(due: float) -> None:
        conn = await idle.get()  # waiting for a free connection counts: the latency runs from `due`
        if time.monotonic() - due > timeout:  # hopelessly behind: counted, not sent, so a run ends in time
            idle.put_nowait(conn)
            run.error("not sent within timeout")
            return
        try:
            async with asyncio.timeout(timeout):
                status = await conn.get(path())
            if status == 200:
                run.latencies_ms.append((time.monotonic() - due) * 1000)
            else:
                run.error(str(status))
        except TimeoutError:
            conn.close()
            run.error("timeout")
        except (ConnectionError, OSError):
            run.error("connection")
        finally:
            idle.put_nowait(conn)

    start = time.monotonic() + 0.05
    total = int(seconds * run.rate)
    tasks = []
    for i in range(total):
        due = start + i / run.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    run.sent = total
    await asyncio.gather(*tasks)
    run.seconds = time.monotonic() - start
    while not idle.empty():
        idle.get_nowait().close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rates", default="100,200,500,1000", help="requests per second, each run in turn")
    parser.add_argument("--seconds", type=float, default=8.0, help="per rate and endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0, help="a request slower than this is an error")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="trainyard-bench-load-") as tmp, PostgresServer.started() as pg:
        url = pg.create_database("trainyard_load")
        t0 = time.monotonic()
        # The benchmark's tenant holds the oldest tenth (its failed jobs first), another tenant the rest:
        # the case where a list scanning the primary key would read past the other tenant's rows.
        ids = copy_jobs(url, args.jobs // 100, tenant="bench", status=JobStatus.failed)
        ids += copy_jobs(url, args.jobs // 10 - len(ids), tenant="bench", status=JobStatus.succeeded)
        copy_jobs(url, args.jobs - args.jobs // 10, tenant="other", status=JobStatus.succeeded)
        print(f"[{time.strftime('%H:%M:%S')}] {args.jobs} jobs written in {time.monotonic() - t0:.1f} s", flush=True)
        key = api_key(url, "bench")
        env = api_env(database_url=url, broker_url=REDIS, data_dir=Path(tmp) / "data", validator_processes=1)
        api = ApiServer(env, Path(tmp) / "api.log")
        try:
            lists = [lambda: "/v1/jobs", lambda: f"/v1/jobs?cursor={rng.choice(ids)}",
                     lambda: "/v1/jobs?status=failed"]
            endpoints: dict[str, Callable[[], str]] = {
                "GET /v1/jobs/{id}": lambda: f"/v1/jobs/{rng.choice(ids)}",
                "GET /v1/jobs (list)": lambda: rng.choice(lists)(),
            }
            for name, path in endpoints.items():
                for rate in (int(r) for r in args.rates.split(",")):
                    run = Run(name, rate)
                    asyncio.run(open_loop(api.port, f"Bearer {key}", path, run, args.seconds, args.connections,
                                          args.timeout))
                    runs.append(run)
                    print(f"[{time.strftime('%H:%M:%S')}] {name} at {rate}/s: p50 {pct(run.latencies_ms, .5):.1f} ms,"
                          f" p99 {pct(run.latencies_ms, .99):.1f} ms, errors {run.errors or 0}", flush=True)
        finally:
            api.stop()
    print(f"\n{args.jobs} jobs in Postgres, {args.seconds:g} s per rate, {args.connections} connections")
    print("endpoint | rate req/s | achieved req/s | p50 ms | p99 ms | errors")
    for run in runs:
        achieved = len(run.latencies_ms) / run.seconds if run.seconds else 0.0
        print(f"{run.name} | {run.rate} | {achieved:.0f} | {pct(run.latencies_ms, .5):.1f} | "
              f"{pct(run.latencies_ms, .99):.1f} | {json.dumps(run.errors) if run.errors else 0}")


if __name__ == "__main__":
    main()
