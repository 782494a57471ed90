"""Keras's resume-after-crash checkpoint, written so that a kill cannot tear it."""

import json
import os

import keras


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose files are each written whole or not at all.

    Keras writes the weights and the epoch number in place: a worker killed
    during the write (SIGKILL, the OOM killer, a host stop) leaves a truncated
    file, and the job then fails when it resumes ("bad object header version
    number" from the weights, a ``JSONDecodeError`` from the epoch). Here each
    file is written beside its final name and renamed over it, the weights
    first: a kill leaves the previous epoch's checkpoint, or at worst the new
    weights with the previous epoch number (that epoch is trained again).
    Local paths only (``os.replace``), which is what the artifact store gives.
    """

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        partial_weights = os.path.join(self.backup_dir, "partial.weights.h5")  # Keras wants this suffix
        self.model.save_weights(filepath=partial_weights, overwrite=True)
        os.replace(partial_weights, self._weights_path)
        partial_metadata = f"{self._training_metadata_path}.partial"
        with open(partial_metadata, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        os.replace(partial_metadata, self._training_metadata_path)
