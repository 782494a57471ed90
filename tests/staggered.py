"""Concurrent calls started in a known order, for tests of who gets served first."""

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def staggered(calls: Sequence[tuple[str, Callable[[], T]]], *, under_way: Callable[[str], bool] | None = None,
              wait_s: float, settle_s: float) -> tuple[list[str], dict[str, T]]:
    """Run each labelled call in a thread of its own, the next one only once the previous one is
    under way (``under_way(label)``, polled every 10 ms for at most ``wait_s``) and ``settle_s``
    more; returns the labels in the order the calls returned, and what each returned."""
    order: list[str] = []
    results: dict[str, T] = {}
    lock = threading.Lock()

    def run(label: str, call: Callable[[], T]) -> None:
        result = call()
        with lock:
            order.append(label)
            results[label] = result

    threads = []
    for label, call in calls:
        thread = threading.Thread(target=run, args=(label, call))
        thread.start()
        threads.append(thread)
        for _ in range(round(wait_s / 0.01)):
            if under_way is None or under_way(label):
                break
            time.sleep(0.01)
        time.sleep(settle_s)
    for thread in threads:
        thread.join()
    return order, results
