"""Fault injection: the service in distributed mode on a private Postgres and Redis,
broken in every way an operator meets, with what each fault cost printed per scenario.

    .venv/bin/python bench/faults.py                 # every scenario (about 15-25 minutes here)
    .venv/bin/python bench/faults.py --only burst pg-restart

Printed per scenario: jobs lost (not succeeded), epochs missing or duplicated in the
curves and the event logs, extra terminal events, 5xx answered to a client polling
during the fault (503 counted apart: it is the designed answer to an outage), seconds
from the fault until a job records an epoch again, and until the last job finished.
Goals with default settings: 0 lost, 0 missing, 0 duplicated, 0 5xx; running again
within 15 s of a pool child kill and 30 s of a whole-worker kill or a broker restart.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fault_kit import scenarios  # noqa: E402
from bench.fault_kit.cluster import Cluster, log  # noqa: E402
from tests.servers import PostgresServer, RedisServer  # noqa: E402

SCENARIOS: dict[str, Callable[[scenarios.Context], scenarios.Result]] = {
    "pool-child-kill": scenarios.pool_child_kill,
    "worker-kill": scenarios.worker_kill,
    "sigterm-kill": scenarios.sigterm_then_kill,
    "redis-restart": partial(scenarios.redis_restart, aof=False),
    "redis-restart-aof": partial(scenarios.redis_restart, aof=True),
    "pg-restart": partial(scenarios.postgres_outage, seconds=0.0),
    "pg-outage": partial(scenarios.postgres_outage, seconds=20.0),
    "api-kill-upload": scenarios.api_kill_during_upload,
    "burst": scenarios.burst,
}


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def print_table(results: list[scenarios.Result]) -> None:
    header = f"{'scenario':<38} {'jobs':>4} {'lost':>4} {'miss':>4} {'dup':>4} {'term+':>5} {'5xx':>4} {'503':>4} " \
             f"{'again_s':>8} {'finish_s':>8}"
    print("\n" + header)
    print("-" * len(header))
    for r in results:
        again = f"{r.running_again_s:.1f}" if r.running_again_s is not None else "-"
        finish = f"{r.finish_s:.1f}" if r.finish_s is not None else "-"
        print(f"{r.scenario:<38} {r.jobs:>4} {r.lost:>4} {r.missing:>4} {r.duplicated:>4} {r.terminal_events_extra:>5} "
              f"{r.server_errors:>4} {r.unavailable:>4} {again:>8} {finish:>8}")
        for note in r.notes:
            print(f"    {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the digits CNN each scenario trains")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="trainyard-faults-"))
    log(f"work folder {workdir}")
    # The test suite's private servers, on ports nothing else uses (never the shared ones).
    pg, broker = PostgresServer(spare_port()), RedisServer(spare_port())
    pg.start()
    broker.start()
    cluster = None
    results: list[scenarios.Result] = []
    try:
        database_url = pg.create_database("faults")
        cluster = Cluster(workdir, database_url=database_url, broker_url=broker.url, api_port=spare_port(),
                          extra_env={"TRAINYARD_MAX_QUEUED_JOBS_PER_TENANT": "1000",
                                     "TRAINYARD_UPLOAD_GRACE_S": str(scenarios.UPLOAD_GRACE_S)})
        cluster.start_api()
        cluster.start_control()
        cluster.start_worker()
        cluster.wait_worker_ready()
        ctx = scenarios.Context(cluster, pg, broker, database_url, args.epochs)
        for name in args.only or list(SCENARIOS):
            log(f"scenario {name}")
            result = SCENARIOS[name](ctx)
            results.append(result)
            print_table([result])
    finally:
        if cluster is not None:
            cluster.stop_all()
        broker.kill()
        shutil.rmtree(broker.dir, ignore_errors=True)
        pg.remove()
        if args.keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(results)


if __name__ == "__main__":
    main()
