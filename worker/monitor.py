"""The Keras callback that watches a run and reports findings as they become clear.

Per batch it only records the loss (Keras logs running means; the per-batch
values are recovered from them, per chunk of batches under ``steps_per_execution``).
Once per epoch it measures one fixed probe batch: how many predictions are pinned
at 0 or 1, and the gradient norm that reaches each weight layer; and the noise of
the epoch's losses (diagnosis/noise.py): the spread of the per-batch losses, and of the per-sample losses of one forward
pass over a fixed validation probe. Then every training rule reads the history.
A rule's weak result (info) waits: the code may still become a warning at a later
epoch; what stayed weak is reported as info when training ends.
"""

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from diagnosis.curves import Epoch, Task
from diagnosis.noise import per_sample_std
from diagnosis.registry import RESOLVERS, RULES
from models.findings import Code, Finding, Suggestion

log = logging.getLogger(__name__)
PINNED = 1e-3
PROBE_SIZE = 64  # enough to estimate a share of pinned outputs; small against any epoch
# The per-sample spread of the validation loss to about ±6 % (1/sqrt(2·512)) for the price of one
# forward pass over 512 samples; fewer where samples are large (images), to bound the memory.
VALIDATION_PROBE = 512
VALIDATION_PROBE_BYTES = 32 * 1024**2


class DiagnosisMonitor(keras.callbacks.Callback):
    """Runs the training-phase rules after every epoch; each code is raised once.

    Args:
        task: chance level, target variance and the like, from the training split.
        probe: a small fixed batch ``(x, y)`` of training data.
        loss: the compiled loss function, for the probe's gradients.
        report: receives each finding as it is raised.
        suggest: the fixes for a code (called only when it is raised).
        stop_on: codes that end the run (``diagnosis.stop_on`` of the spec).
        train_samples, batch_size: to recover per-batch losses from running means.
        validation: the validation split's ``(x, y)`` (indexable), for the noise of the validation loss.
        state_path: where its memory (history, raised findings) is saved after every
            epoch, next to the training checkpoint, and read back when a run resumes
            from that checkpoint, so a resumed run neither forgets its history nor
            raises a finding again.
    """

    async_safe = True  # the batch hook only appends a float: Keras may run it off the training thread

    def __init__(
        self, *, task: Task, probe: tuple[np.ndarray, np.ndarray], loss: Any, report: Callable[[Finding], None],
        suggest: Callable[[Code], list[Suggestion]], stop_on: set[str], train_samples: int, batch_size: int,
        from_logits: bool = False, resolve: Callable[[Code, int], None] | None = None, state_path: Path | None = None,
        validation: tuple[Any, Any] | None = None,
    ) -> None:
        super().__init__()
        self.task, self.report, self.suggest, self.stop_on = task, report, suggest, stop_on
        self.resolve = resolve
        self.probe_x = tf.constant(probe[0][:PROBE_SIZE])
        self.probe_y = tf.constant(probe[1][:PROBE_SIZE])
        self.loss_fn, self.from_logits = loss, from_logits
        self.train_samples, self.batch_size = train_samples, batch_size
        self.validation_samples = len(validation[0]) if validation is not None else 0
        self.validation_probe = _validation_probe(validation) if validation is not None else None
        self._forward: Callable[..., Any] | None = None
        self.history: list[Epoch] = []
        self.raised: dict[Code, Finding] = {}
        self.pending: dict[Code, Finding] = {}  # weak (info) results of codes not raised yet
        self.stopped_by: Code | None = None
        self._means: dict[int, float] = {}
        self._gradients: Callable[..., Any] | None = None
        self.seconds = 0.0  # spent in this callback: the price of the diagnosis
        self.epoch_seconds: list[float] = []  # the same, per epoch (the first includes tracing the probe)
        self._seconds_at_begin = 0.0
        self.state_path = state_path
        self._resumed = False

    def state(self) -> dict[str, Any]:
        """What the monitor remembers, as JSON."""
        return {"history": [asdict(e) for e in self.history],
                "raised": [f.as_json() for f in self.raised.values()],
                "pending": [f.as_json() for f in self.pending.values()],
                "stopped_by": self.stopped_by.value if self.stopped_by else None,
                "seconds": self.seconds, "epoch_seconds": self.epoch_seconds}

    def restore(self, state: dict[str, Any], completed: int) -> None:
        """Take back ``state`` for a run that resumes after ``completed`` epochs.

        The state may be ahead of the checkpoint (saved after every epoch, the checkpoint at
        most every ``checkpoint_interval_s``, worker/checkpoint.py): those epochs are trained
        again, so their history is dropped; what they raised is kept, as it was reported already.
        """
        self.history = [Epoch(**e) for e in state["history"] if e["epoch"] <= completed]
        self.raised = {Code(f["code"]): Finding.model_validate(f) for f in state["raised"]}
        self.pending = {Code(f["code"]): Finding.model_validate(f) for f in state.get("pending", [])
                        if f["epoch"] is None or f["epoch"] <= completed}
        self.stopped_by = Code(state["stopped_by"]) if state["stopped_by"] else None
        self.seconds, self.epoch_seconds = state["seconds"], state["epoch_seconds"][:completed]

    def _resume(self, epoch: int) -> None:
        self._resumed = True
        if epoch > 0 and self.state_path is not None and self.state_path.exists():
            self.restore(json.loads(self.state_path.read_text()), completed=epoch)

    def _save(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_suffix(".part")
        partial.write_text(json.dumps(self.state()))
        partial.replace(self.state_path)  # atomic: a kill leaves the old state or the new one

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._resumed:  # resumed after its last epoch: no epoch ran, the verdict still needs the history
            self._resume(getattr(self.model, "_initial_epoch", None) or 0)
        for code, finding in list(self.pending.items()):  # stayed weak to the end: reported as what it is, info
            if code not in self.raised:
                self.raised[code] = finding
                self.report(finding)
        self.pending = {}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._resumed:  # the first epoch of this run: Keras has restored its checkpoint by now
            self._resume(epoch)
        self._means = {}
        self._seconds_at_begin = self.seconds

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        loss = (logs or {}).get("loss")
        if loss is not None:
            self._means[batch] = float(loss)
            if not math.isfinite(self._means[batch]) and "diverging" in self.stop_on:
                self.model.stop_training = True  # a NaN never recovers: stop now, not after the epoch
        self.seconds += time.perf_counter() - started

    def _batch_losses(self) -> list[float]:
        """Each call's own loss, from the running means (Keras weighs each batch by its samples).

        With ``steps_per_execution=k`` Keras calls the batch hook once per chunk of k batches,
        with ``batch`` the chunk's last batch index (past the end for the epoch's shorter last
        chunk): the samples seen so far are counted from that index, so a value here is the mean
        loss of the chunk's k batches (k=1: of one batch). Such a mean has 1/k the variance of a
        batch loss: ``_diagnose`` reads the per-sample noise from it as from a batch of k times
        the size, and ``Epoch.batches_per_loss`` carries k, so the noise rules read the same
        quantity whatever k is.
        """
        losses, seen, previous = [], 0, 0.0
        for batch in sorted(self._means):
            seen_after = min((batch + 1) * self.batch_size, self.train_samples)
            size = seen_after - seen
            if size <= 0:
                break
            mean = self._means[batch]
            losses.append((seen_after * mean - seen * previous) / size)
            seen, previous = seen_after, mean
        return losses

    def _probe(self) -> tuple[float | None, list[float] | None]:
        if self._gradients is None:
            self._gradients = tf.function(self._probe_step, reduce_retracing=True)
        try:
            predictions, norms = self._gradients(self.probe_x, self.probe_y)
        except (ValueError, TypeError, tf.errors.OpError):
            return None, None
        return _pinned_fraction(predictions.numpy(), self.from_logits), [float(n) for n in norms.numpy()]

    def _probe_step(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        weights = [layer.trainable_weights[0] for layer in self.model.layers
                   if layer.trainable_weights and not isinstance(layer, keras.layers.BatchNormalization)]
        with tf.GradientTape() as tape:
            predictions = self.model(x, training=False)
            loss = keras.ops.mean(self.loss_fn(_aligned(y, predictions), predictions))
        gradients = tape.gradient(loss, weights)
        norms = tf.stack([tf.norm(g) if g is not None else tf.constant(0.0) for g in gradients])
        return predictions, norms

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        try:
            self._diagnose(epoch, logs)
        finally:
            self.seconds += time.perf_counter() - started
            self.epoch_seconds.append(self.seconds - self._seconds_at_begin)
        self._save()  # after the findings were reported, before the checkpoint (the last callback)

    def _validation_noise(self) -> tuple[float | None, float | None]:
        """(per-sample std of the validation loss, share of the most predicted class) on the fixed probe."""
        if self.validation_probe is None:
            return None, None
        if self._forward is None:
            self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        x, y = self.validation_probe
        try:
            predictions = self._forward(x)
            losses = _per_sample(self.loss_fn, y, predictions)
        except (ValueError, TypeError, tf.errors.OpError):
            log.debug("validation probe failed: the rules fall back on an assumed band", exc_info=True)
            return None, None
        finite = losses[np.isfinite(losses)]
        std = float(finite.std(ddof=1)) if len(finite) > 1 else None
        return std, _top_class_share(predictions.numpy(), self.from_logits, self.task)

    def _diagnose(self, epoch: int, logs: dict[str, Any] | None) -> None:
        pinned, norms = self._probe()
        val_std, top_share = self._validation_noise()
        batch_losses = self._batch_losses()
        # Each value is the mean loss of `chunk` batches (steps_per_execution, see _batch_losses), so of
        # chunk * batch_size samples: the per-sample noise is read from it as from one batch of that size.
        chunk = int(getattr(self.model, "steps_per_execution", 1) or 1)
        record = Epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()}, batch_losses,
                       pinned if self.task.classification else None, norms,
                       loss_std=per_sample_std(batch_losses, self.batch_size * chunk), n_train=self.train_samples,
                       val_loss_std=val_std, n_val=self.validation_samples or None, top_class_share=top_share,
                       batches_per_loss=chunk)
        self.history.append(record)
        self._resolve(record.epoch)
        for code, rule in RULES.items():
            if code in self.raised:
                continue
            try:
                outcome = rule(self.history, self.task)
            except Exception:  # a rule's bug must never cost the user their training run
                log.exception("diagnosis rule %s failed", code.value)
                continue
            if outcome is None:
                continue
            severity, message, evidence = outcome
            finding = Finding(code=code, severity=severity, phase="training", epoch=record.epoch, message=message,
                              evidence=evidence, suggestions=self.suggest(code) if severity != "info" else [])
            if severity == "info":  # weak: may still become a warning
                self.pending[code] = finding
                continue
            self.pending.pop(code, None)
            self.raised[code] = finding
            self.report(finding)
            if code.value in self.stop_on and self.stopped_by is None:
                self.stopped_by = code
                self.model.stop_training = True

    def _resolve(self, epoch: int) -> None:
        """Downgrade a raised finding that later epochs contradict (a slow starter took off)."""
        for code, resolved in RESOLVERS.items():
            finding = self.raised.get(code)
            if finding is None or finding.severity == "info" or not resolved(self.history, self.task):
                continue
            finding.severity = "info"
            finding.evidence["resolved_epoch"] = epoch
            if self.resolve is not None:
                self.resolve(code, epoch)


def _pinned_fraction(predictions: np.ndarray, from_logits: bool) -> float | None:
    p = predictions.reshape(len(predictions), -1).astype(np.float64)
    if from_logits:
        p = 1 / (1 + np.exp(-p)) if p.shape[1] == 1 else _softmax(p)
    if p.min() < -1e-6 or p.max() > 1 + 1e-6:
        return None  # not probabilities (a linear output): nothing to say
    if p.shape[1] == 1:
        return float(np.mean((p < PINNED) | (p > 1 - PINNED)))
    return float(np.mean(p.max(axis=1) > 1 - PINNED))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _validation_probe(validation: tuple[Any, Any]) -> tuple[tf.Tensor, tf.Tensor] | None:
    """The first samples of the validation split, fixed for the run (the split is not shuffled)."""
    x, y = validation
    if len(x) == 0:
        return None
    per_sample = max(np.asarray(x[:1]).nbytes, 1)
    size = int(min(len(x), VALIDATION_PROBE, max(16, VALIDATION_PROBE_BYTES // per_sample)))
    return tf.constant(np.asarray(x[:size])), tf.constant(np.asarray(y[:size]))


def _aligned(y: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
    """The targets as ``fit`` lines them up with the predictions: labels (n,) against one sigmoid
    output (n, 1) get their axis, and targets of the predictions' rank their dtype (a loss function
    called directly does neither: binary cross-entropy on (n,) labels would raise)."""
    if len(y.shape) == len(predictions.shape) - 1 and predictions.shape[-1] == 1:
        y = tf.expand_dims(y, -1)
    if len(y.shape) == len(predictions.shape):
        y = tf.cast(y, predictions.dtype)
    return y


def _per_sample(loss_fn: Any, y: tf.Tensor, predictions: tf.Tensor) -> np.ndarray:
    """The loss of each sample (a Loss object's ``call`` does not reduce over the batch)."""
    y = _aligned(y, predictions)
    values = loss_fn.call(y, predictions) if isinstance(loss_fn, keras.losses.Loss) else loss_fn(y, predictions)
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1).mean(axis=1)


def _top_class_share(predictions: np.ndarray, from_logits: bool, task: Task) -> float | None:
    """Share of the probe's predictions in the most predicted class: 1.0 is a model that predicts one class."""
    if not task.classification or task.multi_label:
        return None
    p = predictions.reshape(len(predictions), -1)
    if p.shape[1] == 1:
        positive = p[:, 0] > (0.0 if from_logits else 0.5)
        share = float(positive.mean())
        return max(share, 1 - share)
    return float(np.bincount(p.argmax(axis=1)).max() / len(p))
