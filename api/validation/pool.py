"""A pool of child processes that run one target function on JSON payloads.

Each child (``child.py``) is owned by one long-lived thread of the pool, its
slot: the slot starts it, hands it one request at a time, kills it when it is
late and starts the next one when it dies. Children are started by these
threads, never by request threads, because ``PR_SET_PDEATHSIG`` fires when the
*thread* that started a child ends (request threads come and go).

Requests wait in one first-come queue for a free child; before that, each
tenant waits for one of its ``per_tenant`` turns, so a tenant's slow requests
can occupy at most that many children.

Example:
    pool = ProcessPool("keras_bridge.validate:check_spec_json", processes=2, per_tenant=1,
                       memory_bytes=2 * 1024**3, timeout_s=60, queue_wait_s=30)
    pool.start()  # children warm: their target module is imported
    pool.run({"model": ...}, tenant="acme")  # the target's JSON result
    pool.stop()
"""

import json
import logging
import math
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from api.validation.child_process import ChildFailed, ChildGone, ChildProcess
from api.validation.gate import PoolBusy, TenantGate

__all__ = ["ChildFailed", "PoolBusy", "ProcessPool"]

log = logging.getLogger("trainyard.validator")

ROOT = Path(__file__).resolve().parents[2]  # children import the same code as this process
WAITING_PER_TURN = 4  # a tenant's requests that may wait, per turn it has
_STOP = object()


class _Job:
    """One request, from the queue to its answer. A job still queued when its
    requester gives up is withdrawn, and no child ever sees it."""

    def __init__(self, line: bytes) -> None:
        self.line = line
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: Exception | None = None
        self._lock = threading.Lock()
        self._state = "queued"

    def begin(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
        self.started.set()
        return True

    def withdraw(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "withdrawn"
            return True

    def finish(self, result: Any = None, error: Exception | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class ProcessPool:
    """Child processes that run ``target`` ("module:function") on JSON payloads.

    Args:
        target: called in a child with each payload; returns something JSON.
        reset: called in the child after each request ("module:function"), e.g. to
            clear global state the target left behind.
        processes: how many children, each serving one request at a time.
        per_tenant: requests of one tenant that may run at once.
        memory_bytes: each child's memory limit (``RLIMIT_DATA``).
        timeout_s: a child that takes longer on one request is killed.
        queue_wait_s: how long a request may wait for its turn and a free child.
        env: the children's environment (default: this process's).
        start_timeout_s: how long a child may take to import its target.
    """

    def __init__(self, target: str, *, processes: int, per_tenant: int, memory_bytes: int, timeout_s: float,
                 queue_wait_s: float, reset: str | None = None, env: dict[str, str] | None = None,
                 start_timeout_s: float = 180.0) -> None:
        self.processes, self.memory_bytes = processes, memory_bytes
        self.timeout_s, self.queue_wait_s, self.start_timeout_s = timeout_s, queue_wait_s, start_timeout_s
        self._argv = [sys.executable, "-m", "api.validation.child", "--target", target,
                      "--memory-bytes", str(memory_bytes)]
        if reset:
            self._argv += ["--reset", reset]
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self._env = env
        self._gate = TenantGate(per_tenant, per_tenant * WAITING_PER_TURN)
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._slots: list[threading.Thread] = []
        self._children: dict[int, ChildProcess] = {}  # slot index → its current child
        self._ready: set[int] = set()  # slots whose child has imported its target
        self._children_lock = threading.Lock()
        self._running = False
        self._typical_s = 1.0  # recent time per request, for Retry-After

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the children and wait until each has imported its target."""
        started = [threading.Event() for _ in range(self.processes)]
        failures: list[str] = []
        self._running = True
        for index in range(self.processes):
            slot = threading.Thread(target=self._slot, args=(index, started[index], failures),
                                    name=f"validator-slot-{index}", daemon=True)
            self._slots.append(slot)
            slot.start()
        deadline = time.monotonic() + self.start_timeout_s
        for event in started:
            event.wait(max(0.0, deadline - time.monotonic()))
        if failures or not all(e.is_set() for e in started):
            self.stop()
            raise RuntimeError(f"the validator pool did not start: {'; '.join(failures) or 'timed out'}")

    def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new requests, end the queued ones, stop every child; returns once they are gone.

        Idle children exit at the end of their input; one still busy after ``grace_s``
        is killed, and its request answered "shutting down".
        """
        self._running = False
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP and job.withdraw():
                job.finish(error=PoolBusy("the validator pool is shutting down", self._retry_after()))
        for _ in self._slots:
            self._jobs.put(_STOP)
        deadline = time.monotonic() + grace_s
        for slot in self._slots:
            slot.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._children_lock:
            children = list(self._children.values())
        for child in children:
            child.kill()
        for slot in self._slots:
            slot.join(timeout=30)
        self._slots.clear()

    def ready(self) -> int:
        """How many children are ready for requests (a replacement takes seconds to import its target)."""
        return len(self._ready)

    def pids(self) -> list[int]:
        """The children alive now (for tests and metrics)."""
        with self._children_lock:
            return sorted(c.pid for c in self._children.values() if c.process.poll() is None)

    # -- requests --------------------------------------------------------------------

    def run(self, payload: Any, *, tenant: str) -> Any:
        """The target's result for ``payload``.

        Raises:
            ChildFailed: the child died, ran out of memory, took too long or raised.
            PoolBusy: no turn or no free child within ``queue_wait_s``.
        """
        if not self._running:
            raise PoolBusy("the validator pool is not running", self._retry_after())
        try:  # here, so that a payload JSON cannot carry is this request's error, not a slot's
            line = json.dumps({"payload": payload}).encode() + b"\n"
        except (TypeError, ValueError, RecursionError) as exc:
            raise ChildFailed(f"could not be sent this request, which is not JSON ({exc})") from None
        deadline = time.monotonic() + self.queue_wait_s
        with self._gate.turn(tenant, self.queue_wait_s, self._retry_after()):
            job = _Job(line)
            self._jobs.put(job)
            if not job.started.wait(max(0.0, deadline - time.monotonic())) and job.withdraw():
                raise PoolBusy(f"all {self.processes} validator processes stayed busy for {self.queue_wait_s:g} s; "
                               "retry later", self._retry_after())
            # The slot answers within timeout_s (it kills a late child); the margin is for the kill itself.
            if not job.done.wait(self.timeout_s + 60):
                raise ChildFailed(f"did not answer within {self.timeout_s:g} s")
        if job.error is not None:
            raise job.error
        return job.result

    def running(self, tenant: str) -> int:
        """Requests of ``tenant`` in the pool now, waiting for a child or in one."""
        return self._gate.running(tenant)

    def _retry_after(self) -> float:
        return max(1.0, math.ceil(self._typical_s))

    # -- the slots -------------------------------------------------------------------

    def _slot(self, index: int, started: threading.Event, failures: list[str]) -> None:
        """Keep one child alive and feed it jobs until the pool stops."""
        delay = 1.0
        while self._running:
            child = self._spawn(index)
            if isinstance(child, str):  # it died before it was ready
                if not started.is_set():
                    failures.append(child)
                    started.set()
                    return
                log.error("validator slot %d: a new child failed to start (%s); retrying in %.0f s",
                          index, child, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            started.set()
            delay = 1.0
            self._ready.add(index)
            try:
                if self._serve(child) is _STOP:
                    child.stop()
                    break
            except Exception:  # a bug here must not end the slot: its child would die with it
                log.exception("validator slot %d failed; starting a new child", index)
            finally:
                self._ready.discard(index)
            child.dispose()
        with self._children_lock:
            self._children.pop(index, None)

    def _spawn(self, index: int) -> ChildProcess | str:
        argv = [*self._argv, "--parent-pid", str(os.getpid())]  # now: the app may have been forked since
        child = ChildProcess(argv, self._env, self.memory_bytes)
        with self._children_lock:
            self._children[index] = child
        try:
            child.receive(self.start_timeout_s)  # {"ready": true}: the target is imported
        except ChildGone as gone:
            child.dispose()
            return f"the validator process {gone.reason}"
        log.info("validator process %d ready (slot %d)", child.pid, index)
        return child

    def _serve(self, child: ChildProcess) -> object:
        """Returns ``_STOP`` when the pool stops, or None when ``child`` must be replaced."""
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return _STOP
            if child.process.poll() is not None:  # died while idle (the OOM killer, an operator): not this job's fault
                log.warning("validator process %d died while idle (status %s)", child.pid, child.process.returncode)
                self._jobs.put(job)
                return None
            if not job.begin():
                continue
            began = time.monotonic()
            try:
                child.send(job.line)
                reply = child.receive(self.timeout_s)
            except ChildGone as gone:
                job.finish(error=self._failure(gone.reason))
                return None
            self._typical_s = 0.8 * self._typical_s + 0.2 * (time.monotonic() - began)
            if "result" in reply:
                job.finish(result=reply["result"])
            elif reply.get("failure") == "memory":
                job.finish(error=ChildFailed(child.out_of_memory()))
                return None  # the child exits by itself; the next one starts clean
            else:
                job.finish(error=ChildFailed(f"raised {reply.get('message', 'an error')}"))
            try:
                child.receive(self.timeout_s)  # {"ready": true} once its reset is done
            except ChildGone as gone:  # retired (held too much memory), or died in its reset
                log.info("validator process %d %s after a request; starting a new one", child.pid, gone.reason)
                return None

    def _failure(self, reason: str) -> Exception:
        if not self._running:  # killed by stop(), not by the request
            return PoolBusy("the validator pool is shutting down", self._retry_after())
        return ChildFailed(reason)
