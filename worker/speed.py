"""How a job is compiled for speed: steps per execution, XLA and mixed precision.

A small model spends most of each training step outside its own arithmetic: the
Python loop of ``fit``, the call into TensorFlow, the callbacks. With
``steps_per_execution=k`` Keras runs k steps inside one TensorFlow call (a
``tf.while_loop`` over the iterator), so that cost is paid once per k batches;
the arithmetic, the batch order and the optimizer's updates are the same, so the
curves are the same (within float round-off; tests/worker/test_speed.py).

What the service keeps whatever k is:
  - epochs: Keras starts a fresh iterator each epoch and a chunk ends where the
    epoch's data ends (the last chunk is shorter), so every per-epoch callback
    (records, diagnosis, checkpoint, early stopping) still runs after every epoch;
  - per-batch losses: Keras calls ``on_train_batch_end`` once per chunk with the
    running mean, so the monitor recovers one loss per chunk, the mean of its k
    batches, and records k with them (``worker/monitor.py``);
  - cancel and stop: callbacks may stop after any chunk; k is chosen so an epoch
    holds at least ``MIN_CHUNKS`` chunks, so a stop still lands within the epoch;
  - the probe: it runs its own ``tf.function`` at each epoch's end, outside the chunks.

Validation and test batches are forward passes only: they take as many samples as the memory of
a training step holds (``forward_batch_size``), so an epoch's validation makes fewer calls; the
validation loss is the same mean over the same samples (float round-off apart). Not for
sequences: they are padded per batch, and a longer padding changes what a model without masking sees.

XLA stays Keras's "auto": on a GPU when every layer supports it, never on a CPU
or under a distribution strategy. On this project's 2-core CPU, the stories'
models under XLA went from 2.7x faster (story 2) to 20x slower (story 4, Conv2D
with dropout), compiled for up to 18 s, and moved the curves by up to 1 %, so
forcing it on a CPU is left to a spec that asks (``fit.speed.jit_compile``).
"""

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import keras
import tensorflow as tf

from keras_bridge.budget import MemoryEstimate
from models.spec import SpeedSpec

# An epoch keeps at least this many chunks: loss points for the diagnosis's noise estimate
# (``diagnosis/noise.py`` needs 3) and chances for a cancel or a NaN stop to act mid-epoch.
MIN_CHUNKS = 8
# Past this the per-call cost is already a few percent of a step's (measured: bench/overhead.py).
MAX_STEPS_PER_EXECUTION = 32


def auto_steps_per_execution(batches_per_epoch: int) -> int:
    """The service's ``steps_per_execution`` for an epoch of ``batches_per_epoch`` batches."""
    return max(1, min(MAX_STEPS_PER_EXECUTION, batches_per_epoch // MIN_CHUNKS))


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


@dataclass(frozen=True)
class Speed:
    """The settings a job runs with, as resolved on this worker (recorded in the job's data summary)."""

    steps_per_execution: int
    jit_compile: bool | str  # "auto": Keras decides per model (XLA on a GPU only)
    mixed_precision: bool
    # Samples per validation and test batch (forward passes only): set once the model's memory is
    # known (``keras_bridge.budget.MemoryEstimate.forward_batch_size``); None: fit's batch_size.
    forward_batch_size: int | None = None

    @classmethod
    def resolve(cls, spec: SpeedSpec, *, train_samples: int, batch_size: int, gpu: bool | None = None) -> "Speed":
        batches = math.ceil(train_samples / batch_size)
        steps = auto_steps_per_execution(batches) if spec.steps_per_execution == "auto" else spec.steps_per_execution
        on_gpu = has_gpu() if gpu is None else gpu
        # float16 on a CPU is emulated and slower than float32: the opt-in applies on a GPU only.
        return cls(steps_per_execution=steps, jit_compile=spec.jit_compile,
                   mixed_precision=spec.mixed_precision and on_gpu)

    def with_forward_batch(self, estimate: MemoryEstimate, samples: int) -> "Speed":
        """These settings, with the forward-only batch of a model of this ``estimate`` over ``samples``."""
        return replace(self, forward_batch_size=estimate.forward_batch_size(samples))

    def apply_policy(self) -> None:
        """Before the model is built: its layers take the dtype policy they are created under.
        ``keras_bridge.global_state.reset()`` (before each job) puts the default back."""
        if self.mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")

    def compile_args(self) -> dict[str, Any]:
        """The arguments of ``model.compile`` these settings own."""
        return {"steps_per_execution": self.steps_per_execution, "jit_compile": self.jit_compile}

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
