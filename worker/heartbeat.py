"""A background thread that keeps a running job's heartbeat fresh.

The reconciler takes a running job whose heartbeat went stale as lost (its
worker died) and queues it again; a long epoch must not look like that.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def heartbeat(beat: Callable[[], object], interval_s: float) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                beat()
            except Exception:  # a missed beat is retried; it must not kill training
                pass

    thread = threading.Thread(target=loop, name="trainyard-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval_s)
