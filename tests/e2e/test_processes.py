"""The processes that start workers keep them up, and take them down with them."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import WAIT
from tests.servers import alive, descendants, free_port, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_killing_the_api_of_trainyard_serve_leaves_no_worker_behind(tmp_path):
    port = free_port("TRAINYARD_TEST_SERVE_PORTS", "18400-18499")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update({"TRAINYARD_DATA_DIR": str(tmp_path / "var"), "PORT": str(port), "CUDA_VISIBLE_DEVICES": "",
                "PYTHONPATH": str(ROOT)})
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen([sys.executable, "-m", "cli.main", "serve"], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    workers: list[int] = []
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, WAIT, "trainyard serve to answer")
        # The training worker with its pool child, and the webhook worker.
        workers = wait_until(lambda: pids if len(pids := descendants(serve.pid)) >= 3 else None, WAIT,
                             "the Celery workers of serve")

        serve.send_signal(signal.SIGKILL)  # the API process dies without a chance to clean up
        serve.wait()
        killed_at = time.monotonic()
        wait_until(lambda: not any(alive(pid) for pid in workers), 120, "the orphaned workers to stop")
        gone_after_s = time.monotonic() - killed_at
        print(f"\nserve killed: its {len(workers)} worker processes were gone after {gone_after_s:.1f} s")
    finally:
        for pid in [*workers, *descendants(serve.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        log.close()
