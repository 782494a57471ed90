"""Private servers for fault tests: a Postgres, a Redis and the API (uvicorn), each
a real process on a spare port that a test may stop, kill and start again.

The shared Postgres and Redis must never be restarted; fault tests use these.
Ports come from the ranges given by ``TRAINYARD_TEST_PG_PORTS``,
``TRAINYARD_TEST_REDIS_PORTS`` and ``TRAINYARD_TEST_API_PORTS`` ("first-last"),
so parallel runs on one machine can be kept apart. Every server is stopped by
its fixture's finalizer, also when the test fails. The helpers these servers use
(waiting, ports, process trees) serve the e2e stack and the benchmarks too.

Example::

    with PostgresServer.started(tmp) as pg, RedisServer.started() as redis:
        url = pg.create_database("faults")
        ...
        pg.stop(); ...; pg.start()
"""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import redis
from sqlalchemy import create_engine, text

from migrations import upgrade
from models.db import make_engine, make_session_factory
from tests.auth import new_key

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def _port_range(variable: str, default: str) -> range:
    first, _, last = os.environ.get(variable, default).partition("-")
    return range(int(first), int(last) + 1)


def free_port(variable: str, default: str) -> int:
    """A port of the range that nothing listens on now. The search starts at a random port of the range, so
    that runs sharing the machine seldom pick the same one in the instant before either binds it."""
    ports = _port_range(variable, default)
    start = random.randrange(len(ports))
    for port in [*ports[start:], *ports[:start]]:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {variable}={os.environ.get(variable, default)}")


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds the listening TCP socket of 127.0.0.1:``port`` (Linux /proc): a
    server that answers on the port may be another run's, which took the port first."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # closed since the listing
                inodes.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    local, listening = f"0100007F:{port:04X}", "0A"
    return any(fields[1] == local and fields[3] == listening and f"socket:[{fields[9]}]" in inodes
               for fields in (line.split() for line in table))


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something true, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def listening(port: int) -> bool:
    """Whether something on this machine accepts connections on ``port``."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """The processes that any thread of ``pid`` started."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for thread in threads:
        try:
            found += [int(child) for child in Path(f"/proc/{pid}/task/{thread}/children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    found, frontier = [], [pid]
    while frontier:
        below = children(frontier.pop(0))
        found += below
        frontier += below
    return found


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


class PostgresServer:
    """A Postgres cluster of its own in a temporary folder, trust auth, on a spare port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port("TRAINYARD_TEST_PG_PORTS", "55432-55439")
        self.dir = Path(tempfile.mkdtemp(prefix="trainyard-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_postgres, *argv], capture_output=True, text=True, check=check, timeout=120)

    @property
    def server_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends the sessions and shuts down cleanly; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    @property
    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self, prefix: str = "trainyard") -> str:
        """A new database, migrated to head; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(f"{self.server_url}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = f"{self.server_url}/{name}"
        upgrade(url)
        return url

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator["PostgresServer"]:
        server = cls()
        try:
            server.start()
            yield server
        finally:
            server.remove()


class RedisServer:
    """A Redis without persistence (a restart loses its queues, as a crash does)."""

    def __init__(self, port: int | None = None, *, appendonly: bool = False) -> None:
        self.port = port or free_port("TRAINYARD_TEST_REDIS_PORTS", "56379-56389")
        self.dir = Path(tempfile.mkdtemp(prefix="trainyard-redis-"))
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.dir), "--appendonly", "yes" if self.appendonly else "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: listening(self.port), 30, f"redis on port {self.port} to accept connections")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def restart(self) -> None:
        """Stopped and started on the same port: without persistence its queues are gone."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash: whatever it held only in memory is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    @classmethod
    @contextlib.contextmanager
    def started(cls, *, appendonly: bool = False) -> Iterator["RedisServer"]:
        server = cls(appendonly=appendonly)
        try:
            server.start()
            yield server
        finally:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)


class ApiServer:
    """``uvicorn api.app:create_app`` in a subprocess, configured by ``TRAINYARD_*`` variables.

    Args:
        env: the settings, as ``TRAINYARD_*`` variables.
        root: the checkout whose code runs (default: this one); a benchmark
            may point it at another checkout to compare.
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, root: Path = ROOT, port: int | None = None) -> None:
        self.port = port or free_port("TRAINYARD_TEST_API_PORTS", "18300-18399")
        self.log_path = log_path
        self.log = log_path.open("ab")
        argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "info", "--timeout-keep-alive", "30"]
        self.process = subprocess.Popen(
            argv, cwd=root, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(root), "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
                 **env},
        )
        wait_until(self._up, 240, f"the API on port {self.port} to answer /healthz", interval=0.3)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the API exited:\n{self.log_text()[-3000:]}")
        try:
            answered = httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
        return answered and listens_on(self.process.pid, self.port)  # our server, not another run's on the port

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is shut down cleanly."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


def api_env(*, database_url: str, broker_url: str, data_dir: Path, **settings: object) -> dict[str, str]:
    """``TRAINYARD_*`` variables for an API on these servers; ``settings`` by field name."""
    env = {"TRAINYARD_DATABASE_URL": database_url, "TRAINYARD_BROKER_URL": broker_url,
           "TRAINYARD_DATA_DIR": str(data_dir), "TRAINYARD_TRAIN_QUEUE": f"faults-{uuid.uuid4().hex[:8]}"}
    env.update({f"TRAINYARD_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
                for name, value in settings.items()})
    return env


def api_key(database_url: str, tenant: str) -> str:
    """A committed API key of ``tenant`` in that database."""
    engine = make_engine(database_url)
    try:
        return new_key(make_session_factory(engine), tenant)
    finally:
        engine.dispose()
