"""Keras's resume-after-crash checkpoint, written so that a kill cannot tear it, and not after every
short epoch."""

import json
import os
import time
from typing import Any

import keras

from worker import shutdown


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose files are each written whole or not at all, at most every
    ``min_interval_s`` seconds.

    Keras writes the weights and the epoch number in place: a worker killed
    during the write (SIGKILL, the OOM killer, a host stop) leaves a truncated
    file, and the job then fails when it resumes ("bad object header version
    number" from the weights, a ``JSONDecodeError`` from the epoch). Here each
    file is written beside its final name and renamed over it, the weights
    first: a kill leaves the previous checkpoint, or at worst the new
    weights with the previous epoch number (that epoch is trained again).
    Local paths only (``os.replace``), which is what the artifact store gives.

    Args:
        min_interval_s: an epoch's end saves only once this many seconds passed since the
            last save (or since training began); 0 saves after every epoch. A worker that
            is shutting down saves at once (it hands the job back after this epoch). The
            epochs after the last save are trained again by a run that resumes; their
            records stand as first written (``job_store.record_epoch``).
    """

    def __init__(self, backup_dir: str, *, min_interval_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(backup_dir, **kwargs)
        self.min_interval_s = min_interval_s
        self._saved_at = time.monotonic()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        self._saved_at = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if shutdown.requested() or time.monotonic() - self._saved_at >= self.min_interval_s:
            self._save_model()

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        partial_weights = os.path.join(self.backup_dir, "partial.weights.h5")  # Keras wants this suffix
        self.model.save_weights(filepath=partial_weights, overwrite=True)
        os.replace(partial_weights, self._weights_path)
        partial_metadata = f"{self._training_metadata_path}.partial"
        with open(partial_metadata, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        os.replace(partial_metadata, self._training_metadata_path)
        self._saved_at = time.monotonic()
