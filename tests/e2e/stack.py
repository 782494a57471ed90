"""Workers for the distributed fault tests, started as operators start them (`trainyard
worker`, supervised), each in a session of its own so that a test can kill a whole worker.
Their private Redis and the waiting and process-tree helpers are those of tests/servers.py."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.servers import descendants, wait_until

ROOT = Path(__file__).resolve().parents[2]
WAIT = 300  # the longest any step may take on a loaded machine; every wait is bounded by it


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
