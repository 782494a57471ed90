"""The parent's handle on one child of the pool: JSON lines in, JSON lines out."""

import collections
import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
from typing import Any

log = logging.getLogger("trainyard.validator")

MAX_REPLY_BYTES = 64 * 1024**2
STDERR_TAIL_LINES = 40
# What a child that ran out of memory leaves on stderr before it dies (Python,
# C++ and TensorFlow say it differently).
MEMORY_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "ran out of memory", "OOM when allocating")


class ChildFailed(Exception):
    """The child could not answer this request; ``reason`` completes "the validator process …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the validator process {reason}")
        self.reason = reason


class ChildGone(Exception):
    """The child died, or was killed for being late; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChildProcess:
    def __init__(self, argv: list[str], env: dict[str, str], memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, close_fds=True)
        self.pid = self.process.pid
        self._pending = bytearray()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._drain = threading.Thread(target=self._drain_stderr, name=f"validator-{self.pid}-stderr", daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:  # drained always, so a chatty child never blocks on a full pipe
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            log.debug("validator %d: %s", self.pid, line)

    def send(self, line: bytes) -> None:
        """One request: a JSON object on one line."""
        assert self.process.stdin is not None
        self._stderr.clear()  # from now on the tail tells about this request only
        try:
            self.process.stdin.write(line)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise ChildGone(self._death()) from None

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """The next message, or ChildGone if the child dies or is silent for ``timeout_s``."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self.kill()
                raise ChildGone(f"took longer than {timeout_s:g} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise ChildGone(self._death())
            self._pending += chunk
            if len(self._pending) > MAX_REPLY_BYTES:
                self.kill()
                raise ChildGone(f"answered more than {MAX_REPLY_BYTES // 1024**2} MiB")
        line, _, rest = bytes(self._pending).partition(b"\n")
        self._pending = bytearray(rest)
        try:
            return json.loads(line)
        except ValueError:
            self.kill()
            raise ChildGone("answered something that is not JSON") from None

    def _death(self) -> str:
        """Why the child is gone, once it is."""
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # it closed its output but lives on: end it
            self.kill()
            code = self.process.wait()
        self._drain.join(timeout=2)  # the tail is whole once stderr is closed
        tail = "\n".join(self._stderr)
        if tail:
            log.warning("validator process %d ended (status %d); the end of its stderr:\n%s",
                        self.pid, code, tail[-4000:])
        if any(marker in tail for marker in MEMORY_MARKERS):
            return self.out_of_memory()
        if code < 0:
            return f"died with signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def out_of_memory(self) -> str:
        return f"ran out of its {self.memory_bytes // 1024**2} MiB of memory"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self, grace_s: float = 5.0) -> None:
        """End of input asks the child to exit; past ``grace_s`` it is killed."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.dispose()

    def dispose(self) -> None:
        """Kill the child if it still runs and close its pipes."""
        self.kill()
        self._drain.join(timeout=2)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
