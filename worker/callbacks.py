"""Keras callbacks that connect a training run to the service."""

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
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.record(epoch=epoch + 1, logs=dict(logs or {}), duration_s=time.perf_counter() - self._started)


class StopWhen(keras.callbacks.Callback):
    """Stops training at the end of an epoch when ``should_stop()`` turns true.

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
