"""Keras callbacks that connect a training run to the service."""

import json
import os
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


class Checkpoint(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore`` with each file replaced whole or not at all.

    Keras writes ``latest.weights.h5`` in place: a worker killed during that write
    leaves a file that cannot be opened, and the next delivery of the job fails
    in ``on_train_begin``. Here the weights are written beside it and renamed over
    it, then the epoch count the same way. A kill between the two renames leaves
    the new weights with the previous count: the resumed run trains that epoch
    once more (its record, made before, stands), it never skips one.
    """

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        partial = os.path.join(self.backup_dir, "partial.weights.h5")  # Keras wants the .weights.h5 ending
        self.model.save_weights(partial, overwrite=True)
        os.replace(partial, self._weights_path)
        metadata = f"{self._training_metadata_path}.part"
        with open(metadata, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        os.replace(metadata, self._training_metadata_path)
