"""`trainyard worker` keeps its Celery processes up.

A worker process that exits on its own (a crash in the broker transport, an
out-of-memory kill, a bug) is started again, after a back-off that grows while
it keeps failing (1 s, 2 s, 4 s ... 60 s) and starts over once it has run a
minute. SIGTERM or SIGINT is forwarded to every process once (a warm shutdown:
each hands its job back) and nothing is restarted after it.
"""

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable

log = logging.getLogger("trainyard.supervise")

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
HEALTHY_AFTER_S = 60.0  # a process that ran this long starts the back-off over when it dies


class Supervised:
    def __init__(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.name = name
        self.start = start
        self.process = start()
        self.started_at = time.monotonic()
        self.backoff_s = BACKOFF_FIRST_S
        self.restart_at: float | None = None

    def check(self, now: float) -> None:
        """Restart the process if it died and its back-off is over."""
        if self.restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            if now - self.started_at >= HEALTHY_AFTER_S:
                self.backoff_s = BACKOFF_FIRST_S
            self.restart_at = now + self.backoff_s
            log.warning("%s (pid %d) exited with %s; restarting in %.0f s", self.name, self.process.pid, code,
                        self.backoff_s)
            self.backoff_s = min(self.backoff_s * 2, BACKOFF_MAX_S)
        elif now >= self.restart_at:
            self.process, self.started_at, self.restart_at = self.start(), now, None
            log.warning("%s restarted (pid %d)", self.name, self.process.pid)


def watch(processes: list[Supervised], stopping: threading.Event, poll_s: float = 0.5) -> None:
    """Restart whichever process dies until ``stopping`` is set."""
    while not stopping.wait(poll_s):
        now = time.monotonic()
        for supervised in processes:
            supervised.check(now)


def stop_all(processes: list[Supervised], timeout_s: float | None = None) -> int:
    """SIGTERM (a warm shutdown) to each live process, then wait; returns the highest exit code.
    A process still running after ``timeout_s`` is killed."""
    for supervised in processes:
        if supervised.process.poll() is None:
            supervised.process.send_signal(signal.SIGTERM)
    codes = []
    for supervised in processes:
        try:
            codes.append(supervised.process.wait(timeout=timeout_s))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0f s: killing it", supervised.name, timeout_s)
            supervised.process.kill()
            codes.append(supervised.process.wait())
    return max(codes, default=0)


def supervise(processes: list[Supervised]) -> int:
    """`trainyard worker`: restart what dies until SIGTERM/SIGINT, then stop every process."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    watch(processes, stopping)
    return stop_all(processes)
