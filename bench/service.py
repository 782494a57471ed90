"""A Trainyard service for a benchmark: `trainyard serve` started in a temporary
directory (embedded, or distributed on the local Postgres and Redis), or one
already running (--url); waits for readiness, stops it and its workers after."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import alive, children

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
TRAINYARD = Path(PYTHON).with_name("trainyard")
CLK_TCK = os.sysconf("SC_CLK_TCK")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                   check=True, capture_output=True, text=True)


def empty_redis_db() -> int:
    import redis

    # 14 and 15 are the test suite's (tests/conftest.py, tests/e2e/conftest.py), 0 everybody's default.
    for n in range(13, 0, -1):
        client = redis.Redis(host="127.0.0.1", port=6379, db=n)
        try:
            if client.dbsize() == 0:
                return n
        finally:
            client.close()
    raise SystemExit("no empty Redis database (1..13) to use as the broker; pass --redis-db")


def clean_redis_db(n: int) -> None:
    """Delete what a Celery worker and API of this run leave in Redis database n, and nothing else."""
    import redis

    from broker.tasks import CONTROL_QUEUE, training_queues
    from models.settings import Settings

    settings = Settings()  # the run's TRAINYARD_* environment, as its processes read it
    queues = {*training_queues(settings.train_queue), CONTROL_QUEUE, settings.webhook_queue, "celery"}
    ours = {"unacked", "unacked_index", "unacked_mutex", "_kombu.binding_deadlines"}
    for q in queues:
        ours |= {q, f"_kombu.binding.{q}", f"_kombu.binding_permanent.{q}"}
    client = redis.Redis(host="127.0.0.1", port=6379, db=n)
    try:
        keys = [k.decode() for k in client.scan_iter(count=1000)]
        mine = [k for k in keys if k in ours or "pidbox" in k or "celeryev" in k]
        if mine:
            client.delete(*mine)
        others = sorted(set(keys) - set(mine))
        if others:
            log(f"Redis database {n} also holds {len(others)} keys this run did not make "
                f"(e.g. {others[:3]}): left alone")
    finally:
        client.close()


class Service:
    """``trainyard serve`` in its own process group, or an already running one (--url)."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.database_url: str | None = args.database_url
        self.redis_db: int | None = None
        self.pg_db: str | None = None
        self.url = args.url.rstrip("/") if args.url else ""
        self.logfile = workdir / "service.log"
        self.orphaned_worker: bool | None = None

    def start(self) -> None:
        if self.args.url:
            log(f"using the running service at {self.url}")
            self.wait_ready(60)
            return
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PORT": str(port), "TRAINYARD_DATA_DIR": str(self.workdir / "data")}
        # The code of this checkout, even where the editable install's package list is stale.
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        for key in ("TRAINYARD_DATABASE_URL", "TRAINYARD_BROKER_URL", "TRAINYARD_ARTIFACT_ROOT"):
            env.pop(key, None)
        if self.args.mode == "distributed":
            self.pg_db = f"trainyard_bench_{os.getpid()}"
            psql(f'CREATE DATABASE "{self.pg_db}"')
            self.redis_db = self.args.redis_db if self.args.redis_db is not None else empty_redis_db()
            self.database_url = f"{POSTGRES}/{self.pg_db}"
            env["TRAINYARD_DATABASE_URL"] = self.database_url
            env["TRAINYARD_BROKER_URL"] = f"{REDIS}/{self.redis_db}"
            log(f"distributed mode: database {self.pg_db}, broker {REDIS}/{self.redis_db}")
        else:
            self.database_url = f"sqlite:///{self.workdir / 'data' / 'trainyard.db'}"
        log(f"starting `trainyard serve` on {self.url} (data dir {self.workdir / 'data'}, log {self.logfile})")
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen([str(TRAINYARD), "serve"], cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        self.wait_ready(180)
        log(f"ready after {time.monotonic() - t0:.1f} s")

    def auth_headers(self) -> dict[str, str]:
        """The API key: $TRAINYARD_API_KEY for --url, else the first key `trainyard serve` saved."""
        key = os.environ.get("TRAINYARD_API_KEY")
        saved = self.workdir / "data" / "api-key"
        if not key and not self.args.url and saved.is_file():
            key = saved.read_text().strip()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"the service exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=5)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.25)
        raise SystemExit(f"GET /readyz did not return 200 within {timeout:.0f} s (last: {last})\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.args.url:
            return f"(the service at {self.url} was not started by this script: see its own log)"
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            t0 = time.monotonic()
            started = children(self.proc.pid)  # the Celery worker that `serve` started
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    log("the service did not stop within 90 s of SIGTERM")
            orphans = [pid for pid in started if alive(pid)]
            self.orphaned_worker = bool(orphans)
            if orphans:
                # `serve` should have stopped its worker itself (see bench/README.md).
                log(f"`trainyard serve` exited ({self.proc.returncode}) but left its worker {orphans} running: "
                    "sending it SIGTERM")
                for pid in orphans:
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 60
                while any(alive(pid) for pid in orphans) and time.monotonic() < deadline:
                    time.sleep(0.2)
            deadline = time.monotonic() + 15  # the worker's pool and beat children exit after it
            while self._group_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._group_alive():
                log(f"processes of the service are still running: killing process group {self.proc.pid}")
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            log(f"service stopped in {time.monotonic() - t0:.1f} s (exit code {self.proc.returncode})")
            self.proc = None
        if self.redis_db is not None:
            clean_redis_db(self.redis_db)
            self.redis_db = None
        if self.pg_db is not None:
            try:
                psql(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
            except subprocess.CalledProcessError as exc:
                log(f"could not drop database {self.pg_db}: {exc.stderr.strip()}")
            self.pg_db = None

    def _group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def cpu_seconds(self) -> float | None:
        """utime + stime of every live process of the service's process tree (None with --url).

        A tree, not a process group: `serve` starts its workers in groups of their own."""
        if self.proc is None:
            return None
        total, pending = 0, [self.proc.pid]
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
            pending.extend(children(pid))
        return total / CLK_TCK
