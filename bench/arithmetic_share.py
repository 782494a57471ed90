"""How much of a plain ``model.fit`` epoch is the model's own arithmetic? (issue 12)

For one story case (``bench/stories/cases.py``) on its generated data, in one process: the CPU
seconds of one ``tf.function`` call that runs the forward and backward pass of every training batch
and the forward pass of the validation split (no optimizer step, no metrics, no callbacks, no
input pipeline), against the CPU seconds of a plain ``fit`` epoch with Keras's defaults (epochs
2..3 of each repeat). Their ratio bounds what any speed setting can gain on this machine: a
service epoch cannot take less CPU than its arithmetic. Prints figures, asserts nothing.

    PYTHONPATH=$PWD .venv/bin/python bench/arithmetic_share.py story4-faces-stuck [--repeats 4]
"""

import argparse
import copy
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.stories.cases import CASES  # noqa: E402
from keras_bridge.budget import build_within_budget  # noqa: E402
from keras_bridge.limits import Budgets  # noqa: E402
from keras_bridge.training import compile_model, optimizer_slots  # noqa: E402
from models.settings import Settings  # noqa: E402
from models.spec import JobSpec  # noqa: E402
from worker.data import prepare  # noqa: E402


class EpochCpu(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.process_time() - self._started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=[c.name for c in CASES if c.dataset is not None])
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args()
    case = next(c for c in CASES if c.name == args.case)
    assert case.dataset is not None
    spec = JobSpec.model_validate({**copy.deepcopy(case.spec), "diagnosis": {"stop_on": []}})
    assert spec.seed is not None
    data = prepare(case.dataset(), spec.data, spec.seed)
    x, y = np.asarray(data.train.x), np.asarray(data.train.y)
    assert data.validation is not None
    x_val, y_val = np.asarray(data.validation.x), np.asarray(data.validation.y)
    keras.utils.set_random_seed(spec.seed)
    model, _ = build_within_budget(spec, Budgets.from_settings(Settings()), optimizer_slots(spec.compile.optimizer),
                                   materialize=True)
    compile_model(model, spec.compile, steps_per_execution=1, jit_compile="auto")
    loss_fn = keras.losses.get(model.loss) if isinstance(model.loss, str) else model.loss
    b = spec.fit.batch_size
    whole = len(x) // b * b  # whole batches only: one stacked tensor
    xs, ys = tf.constant(x[:whole].reshape(-1, b, *x.shape[1:])), tf.constant(y[:whole].reshape(-1, b, *y.shape[1:]))

    @tf.function
    def arithmetic() -> tf.Tensor:
        total = tf.constant(0.0)
        for i in tf.range(tf.shape(xs)[0]):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_fn(ys[i], model(xs[i], training=True)))
            total += tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, model.trainable_weights)])
        return total + tf.reduce_sum(model(tf.constant(x_val), training=False))

    arithmetic()  # traced outside the timing
    alone, fitted = [], []
    for _ in range(args.repeats):
        started = time.process_time()
        arithmetic()
        alone.append(time.process_time() - started)
        clock = EpochCpu()
        model.fit(x, y, batch_size=b, validation_data=(x_val, y_val), epochs=3, verbose=0, callbacks=[clock])
        fitted += clock.seconds[1:]
    print(f"{args.case}: arithmetic alone {statistics.median(alone):.3f} s CPU "
          f"({' '.join(f'{a:.3f}' for a in alone)}), plain fit epoch {statistics.median(fitted):.3f} s CPU "
          f"({' '.join(f'{a:.3f}' for a in fitted)}): share {statistics.median(alone) / statistics.median(fitted):.2f}")


if __name__ == "__main__":
    main()
