"""What checking specs costs the API process: its memory, and :validate's latency.

Starts the app in this process (embedded: SQLite in a temporary folder, anonymous
localhost access), sends POST /v1/jobs:validate for two small specs, one after
the other, and prints the API process's resident memory after start-up and after
the requests, the validator children's (if the app has them), and the latency's
median and 90th percentile. Asserts nothing.

Run it against any checkout, e.g. before and after a change:

    PYTHONPATH=$PWD .venv/bin/python bench/validate_latency.py [--requests 40]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/validate_latency.py
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from migrations import upgrade
from models.settings import Settings
from tests.specs import DIGITS_CNN, IRIS_MLP


def rss_mib(pid: str | int = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), allow_anonymous_localhost=True)
        settings.artifacts.mkdir(parents=True)
        upgrade(settings.database_dsn)
        began = time.perf_counter()
        app = create_app(settings)
        with TestClient(app, client=("127.0.0.1", 5000)) as client:
            start_s = time.perf_counter() - began
            rss_start = rss_mib()
            latencies = []
            for n in range(args.requests):
                body = (DIGITS_CNN, IRIS_MLP)[n % 2]
                t0 = time.perf_counter()
                response = client.post("/v1/jobs:validate", json=body)
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text
            rss_after = rss_mib()
            pool = getattr(app.state, "validator", None)
            children = [round(rss_mib(pid)) for pid in pool.pids()] if pool is not None else []
        latencies.sort()
        print(json.dumps({
            "checks": "validator pool" if pool is not None else "in the API process",
            "start_up_s": round(start_s, 2),
            "api_rss_mib_after_start": round(rss_start),
            "api_rss_mib_after_requests": round(rss_after),
            "validator_children_rss_mib": children,
            "tensorflow_in_api": "tensorflow" in sys.modules,
            "requests": args.requests,
            "validate_median_ms": round(statistics.median(latencies) * 1000, 1),
            "validate_p90_ms": round(latencies[int(0.9 * (len(latencies) - 1))] * 1000, 1),
        }, indent=2))


if __name__ == "__main__":
    main()
