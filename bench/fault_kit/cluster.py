"""The service in distributed mode on the private servers: the API, a training worker
and the control plane, each `trainyard …` in its own process group so that one can
be killed without the others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import alive, children, descendants

ROOT = Path(__file__).resolve().parents[2]
TRAINYARD = [sys.executable, "-m", "cli.main"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Cluster:
    def __init__(self, workdir: Path, *, database_url: str, broker_url: str, api_port: int,
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.api_port = api_port
        self.url = f"http://127.0.0.1:{api_port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TRAINYARD_DATA_DIR": str(workdir / "data"),
            "TRAINYARD_DATABASE_URL": database_url,
            "TRAINYARD_BROKER_URL": broker_url,
            "TRAINYARD_TRAIN_QUEUE": "cpu",
            **(extra_env or {}),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.run("migrate")
        out = self.run("keys", "create", "--tenant", "faults", "--name", "bench")
        self.key = out.strip().splitlines()[-1]  # "created …; the key is shown this once:\n<key>"
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def run(self, *args: str) -> str:
        done = subprocess.run([*TRAINYARD, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen([*TRAINYARD, *args], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_api(self) -> None:
        self.start("api", "api", "--port", str(self.api_port))
        self.wait_ready()

    def start_worker(self) -> None:
        self.start("worker", "worker", "--gpus", "0")

    def start_control(self) -> None:
        self.start("control", "worker", "--control")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the API did not answer /healthz within {timeout:.0f} s")

    def wait_worker_ready(self, timeout: float = 240) -> None:
        """Until the training worker's log says Celery is ready."""
        deadline = time.monotonic() + timeout
        log_file = self.workdir / "worker.log"
        start = log_file.stat().st_size if log_file.exists() else 0
        while time.monotonic() < deadline:
            with log_file.open("rb") as f:
                f.seek(start)
                if b" ready." in f.read():
                    return
            time.sleep(0.3)
        raise SystemExit("the training worker did not become ready")

    def pool_child(self) -> int | None:
        """The process that trains: the leaf of the worker's process tree."""
        proc = self.procs["worker"]
        leaves = [p for p in descendants(proc.pid) if not children(p)]
        return max(leaves) if leaves else None

    def signal_group(self, name: str, signum: int) -> None:
        try:
            os.killpg(self.procs[name].pid, signum)
        except ProcessLookupError:
            pass

    def group_alive(self, name: str) -> bool:
        proc = self.procs[name]
        return alive(proc.pid) or any(alive(p) for p in descendants(proc.pid))

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group, as a host or container loss does."""
        proc = self.procs[name]
        tree = [proc.pid, *descendants(proc.pid)]
        self.signal_group(name, signal.SIGKILL)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.signal_group(name, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(self.group_alive(n) for n in self.procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        for name in list(self.procs):
            self.signal_group(name, signal.SIGKILL)
            self.procs[name].wait()
