"""The monitor measures the noise of each epoch's losses on a real (tiny) fit: the per-sample spread
of the validation loss on its fixed probe, of the training loss from the per-batch losses, and the
share of the most predicted class."""

import keras
import numpy as np

from diagnosis.curves import Task
from worker.monitor import VALIDATION_PROBE, DiagnosisMonitor


def test_each_epoch_carries_the_spread_and_counts_of_its_losses():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1200, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.standard_normal(1200) > 0).astype("int64")
    (x_train, y_train), (x_val, y_val) = (x[:600], y[:600]), (x[600:], y[600:])
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    task = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=0.69, majority_rate=0.5)
    watch = DiagnosisMonitor(task=task, probe=(x_train, y_train),
                             loss=keras.losses.get("sparse_categorical_crossentropy"), report=lambda f: None,
                             suggest=lambda c: [], stop_on=set(), train_samples=600, batch_size=30,
                             validation=(x_val, y_val))
    model.fit(x_train, y_train, validation_data=(x_val, y_val), batch_size=30, epochs=2, callbacks=[watch], verbose=0)

    assert len(watch.validation_probe[0]) == VALIDATION_PROBE  # of 600: a fixed probe, not the whole split
    for epoch in watch.history:
        assert epoch.n_val == 600 and epoch.n_train == 600
        # Cross-entropy of a half-trained classifier spreads about as widely as its mean.
        assert 0.2 * epoch.val_loss < epoch.val_loss_std < 5 * epoch.val_loss
        assert 0.05 * epoch.loss < epoch.loss_std < 10 * epoch.loss
        assert 0.5 <= epoch.top_class_share <= 1.0
