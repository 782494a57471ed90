"""Stopping a job because its worker shuts down, without losing an epoch."""

from typing import Any

import keras

from worker import shutdown


class HandBack(BaseException):
    """The worker is stopping: give the job back to the queue.

    A ``BaseException``, like ``KeyboardInterrupt``: it is not the user's
    model failing, so the ``except Exception`` that records a job's error
    must not catch it.
    """


class StopOnShutdown(keras.callbacks.Callback):
    """Ends ``fit`` when the worker was asked to stop.

    At the end of an epoch (placed last among the callbacks, so the epoch is
    already recorded and checkpointed); or, when ``grace_s`` has passed
    since the stop was seen, at the end of a batch (the partial epoch is
    recomputed by whoever resumes the job). It raises rather than setting
    ``stop_training``: Keras would report a partial epoch as a complete one.

    Args:
        grace_s: the longest wait for an epoch boundary.
    """

    def __init__(self, grace_s: float) -> None:
        super().__init__()
        self.grace_s = grace_s

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if shutdown.requested() and shutdown.seconds_since_requested() >= self.grace_s:
            raise HandBack(f"the worker is stopping; stopped mid-epoch after {self.grace_s:g} s")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if shutdown.requested():
            raise HandBack(f"the worker is stopping; stopped after epoch {epoch + 1}")
