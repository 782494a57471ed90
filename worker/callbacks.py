"""Keras callbacks that connect a training run to the service."""

import statistics
import time
from collections.abc import Callable
from typing import Any

import keras


class RecordEpochs(keras.callbacks.Callback):
    """Writes each epoch's logs, with its wall time, as soon as the epoch ends.

    Args:
        record: called as ``record(epoch=..., logs=..., duration_s=...)`` with a
            1-based epoch number.
    """

    def __init__(self, record: Callable[..., None]) -> None:
        super().__init__()
        self.record = record
        self._started = self._cpu_started = 0.0
        self.durations: list[float] = []  # the epochs of this run (a resumed run: from where it resumed)
        # CPU seconds of this process over each epoch: the work an epoch took, which other load on a
        # shared machine changes far less than its wall time.
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started, self._cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        duration = time.perf_counter() - self._started
        self.durations.append(duration)
        self.cpu_seconds.append(time.process_time() - self._cpu_started)
        self.record(epoch=epoch + 1, logs=dict(logs or {}), duration_s=duration)

    def timing(self) -> dict[str, Any]:
        """The run's epoch time split in warm-up and training.

        The first epoch of a run also traces (and with XLA compiles) the train and validation
        functions: ``warmup_s`` is what it took beyond a steady epoch (the median of the
        others), ``train_s`` the rest of the epochs' time. With one epoch there is nothing to
        tell them apart: ``warmup_s`` is None and ``train_s`` holds it all. ``epoch_cpu_s``: each
        epoch's CPU seconds (every thread of the process).
        """
        total = sum(self.durations)
        cpu = [round(c, 4) for c in self.cpu_seconds]
        if len(self.durations) < 2:
            return {"epochs": len(self.durations), "warmup_s": None, "train_s": round(total, 4), "epoch_cpu_s": cpu}
        warmup = max(0.0, self.durations[0] - statistics.median(self.durations[1:]))
        return {"epochs": len(self.durations), "warmup_s": round(warmup, 4), "train_s": round(total - warmup, 4),
                "epoch_cpu_s": cpu}


class StopWhen(keras.callbacks.Callback):
    """Stops training at the end of an epoch when ``should_stop()`` turns true.

    With ``steps_per_execution=k`` Keras calls the batch hook once per chunk of k
    batches; the worker's k leaves several chunks in every epoch (``worker/speed.py``),
    so a stop asked mid-epoch still ends the run within that epoch.

    Args:
        should_stop: polled after every epoch, and after a batch when at least
            ``poll_seconds`` passed since the last poll, so a long epoch still
            reacts within seconds without a database query per batch.
    """

    def __init__(self, should_stop: Callable[[], bool], poll_seconds: float = 2.0) -> None:
        super().__init__()
        self.should_stop = should_stop
        self.poll_seconds = poll_seconds
        self.stopped = False
        self._last_poll = time.monotonic()

    def _poll(self) -> None:
        self._last_poll = time.monotonic()
        if not self.stopped and self.should_stop():
            self.stopped = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if time.monotonic() - self._last_poll >= self.poll_seconds:
            self._poll()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._poll()


class StopWhenJudged(keras.callbacks.Callback):
    """Stops training at the end of an epoch that ``judge`` condemns (a sweep's pruner).

    Args:
        judge: called as ``judge(epoch, logs)`` with the 1-based epoch once it is recorded;
            True stops the run there.
    """

    def __init__(self, judge: Callable[[int, dict[str, Any]], bool]) -> None:
        super().__init__()
        self.judge = judge
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.stopped and self.judge(epoch + 1, dict(logs or {})):
            self.stopped = True
            self.model.stop_training = True
