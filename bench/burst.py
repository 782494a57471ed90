"""A burst of concurrent ``POST /v1/jobs`` against the real API (uvicorn) on a
private Postgres and Redis: latency and status counts. Prints figures, asserts nothing.

Run from a checkout (``--root`` picks the code the API runs, e.g. another
checkout to compare against)::

    PYTHONPATH=$PWD .venv/bin/python bench/burst.py [--requests 200] [--once 100] [--repeated 10] [--root DIR]

The burst: ``--once`` distinct Idempotency-Keys sent once each, plus
``--repeated`` keys sharing the other requests, all at once, by one tenant.
Each distinct key should make exactly one job (up to the tenant's cap of
queued jobs, ``--cap``; the rest are 429).
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.burst import Answer, burst_keys, fire  # noqa: E402
from tests.servers import ROOT, ApiServer, PostgresServer, RedisServer, api_env, api_key  # noqa: E402
from tests.specs import IRIS_MLP, spec  # noqa: E402


def report(label: str, answers: list[Answer], jobs: int, distinct: int, wall: float) -> None:
    times = sorted(a.seconds for a in answers)
    statuses = Counter(a.status for a in answers)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{label}: {len(answers)} requests in {wall:.1f} s, statuses {dict(sorted(statuses.items()))}, "
          f"5xx {sum(n for s, n in statuses.items() if s >= 500)}, no answer {statuses.get(0, 0)}; "
          f"latency p50 {statistics.median(times):.2f} s, p95 {p95:.2f} s, max {times[-1]:.2f} s; "
          f"jobs {jobs} for {distinct} distinct keys")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--once", type=int, default=100, help="keys sent once each")
    parser.add_argument("--repeated", type=int, default=10, help="keys sharing the other requests")
    parser.add_argument("--cap", type=int, default=1000, help="max_queued_jobs_per_tenant")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose API code runs")
    parser.add_argument("--timeout", type=float, default=300.0, help="client timeout per request, s")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (API log)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="trainyard-burst-"))
    try:
        with PostgresServer.started() as pg, RedisServer.started() as redis:
            url = pg.create_database("burst")
            env = api_env(database_url=url, broker_url=redis.url, data_dir=tmp, max_queued_jobs_per_tenant=args.cap)
            api = ApiServer(env, tmp / "api.log", root=args.root)
            try:
                keys = burst_keys(args.requests, args.once, args.repeated, "b")
                start = time.perf_counter()
                answers = fire(api.url, api_key(url, "burst"), keys, spec(IRIS_MLP, name="burst", force=True),
                               args.timeout)
                wall = time.perf_counter() - start
                engine = create_engine(url)
                with engine.connect() as conn:
                    jobs = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
                engine.dispose()
                report(f"code of {args.root}", answers, jobs, len(set(keys)), wall)
                print(f"unhandled exceptions in the API's log: {api.log_text().count('Exception in ASGI application')}")
            finally:
                api.stop()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
