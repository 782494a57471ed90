"""A checkpoint interrupted mid-write leaves the previous one whole."""

import json

import keras
import numpy as np
import pytest

from worker import shutdown
from worker.checkpoint import AtomicBackupAndRestore


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_save_killed_mid_write_leaves_the_last_checkpoint_loadable(tmp_path, monkeypatch):
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32")
    model = small_model()
    # Kept after the run, as a checkpoint is when its worker dies before the end.
    model.fit(x, y, epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    saved = model.get_weights()

    def torn_write(self, filepath, overwrite=True):  # the process dies halfway through the file
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n")
        raise SystemExit("killed")

    monkeypatch.setattr(keras.Model, "save_weights", torn_write)
    with pytest.raises(SystemExit):
        small_model().fit(x, y, epochs=4, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path))])
    monkeypatch.undo()

    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 2
    resumed = small_model()
    history = resumed.fit(x, y, epochs=3, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path))])
    assert history.epoch == [2]  # resumed after epoch 2, from its weights
    np.testing.assert_allclose(resumed.get_weights()[1], saved[1], atol=0.05)


def test_short_epochs_are_checkpointed_once_the_interval_passed_and_always_before_a_hand_back(tmp_path, monkeypatch):
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32")
    saved = []

    class Seen(keras.callbacks.Callback):  # after the checkpoint: the epoch it holds at each epoch's end
        def on_epoch_end(self, epoch, logs=None):
            metadata = tmp_path / "training_metadata.json"
            saved.append(json.loads(metadata.read_text())["epoch"] if metadata.exists() else None)

    def fit(interval: float) -> list:
        saved.clear()
        backup = AtomicBackupAndRestore(str(tmp_path), min_interval_s=interval, delete_checkpoint=False)
        small_model().fit(x, y, epochs=3, verbose=0, callbacks=[backup, Seen()])
        return list(saved)

    assert fit(3600) == [None, None, None]  # epochs far shorter than the interval: no save
    assert fit(0) == [1, 2, 3]  # every epoch
    monkeypatch.setattr(shutdown, "requested", lambda: True)
    (tmp_path / "training_metadata.json").unlink()
    assert fit(3600)[:1] == [1]  # a worker that stops saves the epoch it hands back
