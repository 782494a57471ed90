"""A private distributed stack for fault tests: its own Redis (killed and restarted
freely, never the shared one), a database of its own, and workers started as
operators start them (`trainyard worker`, supervised), each in a session of its own
so that a test can kill a whole worker."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
PRIVATE_REDIS_PORTS = range(56400, 56410)
WAIT = 300  # the longest any step may take on a loaded machine; every wait is bounded by it


def wait_until(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.2) -> object:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    found, frontier = [], [pid]
    while frontier:
        out = subprocess.run(["pgrep", "-P", str(frontier.pop(0))], capture_output=True, text=True).stdout
        children = [int(child) for child in out.split()]
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class RedisServer:
    """``redis-server`` without persistence (or with AOF) on one of this suite's ports."""

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        self.port = next(p for p in PRIVATE_REDIS_PORTS if free(p))
        self.workdir = workdir
        self.appendonly = appendonly
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir),
                        "--daemonize", "yes", "--pidfile", str(self.workdir / "redis.pid")], check=True)
        wait_until(self.ping, 30, f"redis on {self.port}")

    def ping(self) -> bool:
        try:
            return self.client().ping()
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def stop(self) -> None:
        try:
            self.client().shutdown(nosave=not self.appendonly)
        except redis.ConnectionError:
            pass  # shutting down closes the connection under the command
        wait_until(lambda: free(self.port), 30, f"redis on {self.port} to stop")

    def restart(self) -> None:
        self.stop()
        self.start()


class SupervisedWorker:
    """`trainyard worker` (the supervisor and its Celery processes), its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, *, hostname: str | None = None) -> None:
        """``hostname``: run it as if on another host (a UTS namespace of its own, as a container has)."""
        self.log_path = log_path
        self.log = log_path.open("ab")
        argv = [sys.executable, "-m", "cli.main", "worker", *args]
        if hostname is not None:
            argv = ["unshare", "--user", "--map-root-user", "--uts", "sh", "-c",
                    f'hostname {hostname} && exec "$@"', "sh", *argv]
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float, count: int = 1) -> None:
        try:
            wait_until(lambda: self.text().count(text) >= count or self.process.poll() is not None, timeout,
                       f"{text!r} in the worker log")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.text()[-3000:]}") from None
        assert self.process.poll() is None, f"the worker exited:\n{self.text()[-3000:]}"

    def descendants(self) -> list[int]:
        return descendants(self.process.pid)

    def holds(self, holder: str | None) -> bool:
        """Whether ``holder`` (a job's ``host:pid``) is one of this worker's processes."""
        return holder is not None and int(holder.rpartition(":")[2]) in self.descendants()

    def kill(self) -> None:
        """The whole worker dies at once (the host or container is killed): every process, SIGKILL,
        the deepest first so that none of them sees its parent go and shuts down gracefully."""
        for pid in [*reversed(self.descendants()), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def stop(self) -> None:
        """What `docker stop` does: SIGTERM, then SIGKILL to whatever lingers."""
        pids = self.descendants()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        for pid in pids:  # no longer below the supervisor once it exited
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
