"""A burst of concurrent ``POST /v1/jobs`` against the real API (uvicorn) on a
private Postgres and Redis: latency and status counts. Prints figures, asserts nothing.

Run from a checkout (``--root`` picks the code the API runs, e.g. another
checkout to compare against)::

    PYTHONPATH=$PWD .venv/bin/python bench/burst.py [--requests 200] [--keys 100] [--repeated 10] [--root /path]

The burst: ``--keys`` distinct Idempotency-Keys sent once each, plus
``--repeated`` keys sent ``(requests - keys) / repeated`` times each, all at
once, by one tenant. Each distinct key should make exactly one job.
"""

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import ROOT, ApiServer, PostgresServer, RedisServer, api_env, api_key  # noqa: E402
from tests.specs import IRIS_MLP, spec  # noqa: E402


def burst_keys(requests: int, keys: int, repeated: int, tag: str) -> list[str]:
    """``keys`` keys once each, then ``repeated`` keys sharing the remaining requests, shuffled."""
    out = [f"{tag}-once-{i}" for i in range(keys)]
    out += [f"{tag}-rep-{i % repeated}" for i in range(requests - keys)] if repeated else []
    random.Random(0).shuffle(out)  # repeats of a key arrive mixed with everything else
    return out


async def fire(url: str, key: str, idempotency_keys: list[str], body: dict, timeout: float) -> list[tuple[int, float, str]]:
    """All requests at once, each on its own connection; (status, seconds, idempotency key) per request."""
    limits = httpx.Limits(max_connections=len(idempotency_keys), max_keepalive_connections=len(idempotency_keys))
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def one(ik: str) -> tuple[int, float, str]:
            start = time.perf_counter()
            try:
                response = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": ik})
                status = response.status_code
            except httpx.HTTPError:
                status = 0  # no answer: the connection was dropped or timed out
            return status, time.perf_counter() - start, ik

        return list(await asyncio.gather(*(one(ik) for ik in idempotency_keys)))


def report(label: str, results: list[tuple[int, float, str]], jobs: int, distinct: int) -> None:
    times = sorted(t for _, t, _ in results)
    statuses = Counter(s for s, _, _ in results)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{label}: {len(results)} requests, statuses {dict(sorted(statuses.items()))}, "
          f"5xx {sum(n for s, n in statuses.items() if s >= 500)}, no answer {statuses.get(0, 0)}, "
          f"latency p50 {statistics.median(times):.2f} s p95 {p95:.2f} s max {times[-1]:.2f} s, "
          f"jobs {jobs} (distinct keys {distinct})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keys", type=int, default=100, help="keys sent once each")
    parser.add_argument("--repeated", type=int, default=10, help="keys sharing the other requests")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose API code runs")
    parser.add_argument("--timeout", type=float, default=300.0, help="client timeout per request, s")
    args = parser.parse_args()

    body = spec(IRIS_MLP, name="burst", force=True)
    tmp = Path(tempfile.mkdtemp(prefix="trainyard-burst-"))
    with PostgresServer.started() as pg, RedisServer.started() as redis:
        url = pg.create_database("burst")
        api = ApiServer(api_env(database_url=url, broker_url=redis.url, data_dir=tmp), tmp / "api.log", root=args.root)
        try:
            key = api_key(url, "burst")
            idempotency_keys = burst_keys(args.requests, args.keys, args.repeated, "b")
            start = time.perf_counter()
            results = asyncio.run(fire(api.url, key, idempotency_keys, body, args.timeout))
            wall = time.perf_counter() - start
            engine = create_engine(url)
            with engine.connect() as conn:
                jobs = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
            engine.dispose()
            report(f"code {args.root}", results, jobs, len(set(idempotency_keys)))
            print(f"wall {wall:.1f} s; API log: {tmp / 'api.log'} "
                  f"({api.log_text().count('Exception in ASGI application')} unhandled exceptions)")
        finally:
            api.stop()


if __name__ == "__main__":
    main()
