"""A warm shutdown (SIGTERM) reaches the job that is training.

Celery handles SIGTERM in the worker's main process: it stops taking messages
and waits for the running task, which lives in a pool child that never sees
the signal. The main process sets this flag, shared with its children through
the fork; the training loop polls it (``worker.hand_back``) and hands the job
back instead of holding the shutdown until the job ends.
"""

import multiprocessing
import time

# Created at import, in the worker's main process, before the pool forks.
_requested = multiprocessing.Event()
_seen_at: float | None = None


def request_stop() -> None:
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def seconds_since_requested() -> float:
    """How long this process has known of the stop (0 when it first looks)."""
    global _seen_at
    if _seen_at is None:
        _seen_at = time.monotonic()
    return time.monotonic() - _seen_at
