"""A checkpoint interrupted mid-write leaves the previous one whole."""

import json

import keras
import numpy as np
import pytest

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
