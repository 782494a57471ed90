"""TensorBoard event files for a job, written with TensorBoard's own format (``tf.summary``).

Laid out as ``keras.callbacks.TensorBoard`` lays them out, so TensorBoard overlays
training and validation: ``train/`` and ``validation/`` hold ``epoch_<metric>``
scalars (``val_loss`` is ``epoch_loss`` under ``validation/``), one value per
epoch, step = the job's 1-based epoch number. ``train/`` also holds what the
diagnosis monitor measured that epoch (``monitor/*``) and the model graph.
Not Keras's own callback, nor ``tf.summary.scalar``: both want the ``tensorboard``
package installed in the worker. ``tf.summary.write`` with the scalars plugin's
metadata writes the very records ``tf.summary.scalar`` writes (TensorBoard's
``plugins/scalar/summary_v2.py``), with TensorFlow alone. Writing is best effort:
a full disk or a failing writer is logged, never the job's failure.
"""

import logging
import math
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tensorflow.core.framework.summary_pb2 import SummaryMetadata

from worker.monitor import DiagnosisMonitor

log = logging.getLogger(__name__)
# The scalars plugin's SummaryMetadata: plugin name "scalars", empty content (ScalarPluginData version 0).
SCALAR = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars", content=b""))


def scalar(tag: str, value: float, step: int) -> None:
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=SCALAR)


class EventFiles(keras.callbacks.Callback):
    """Runs after the monitor (it reads the monitor's record of the epoch just measured)."""

    def __init__(self, log_dir: Path, monitor: DiagnosisMonitor | None = None) -> None:
        super().__init__()
        self.log_dir, self.monitor = log_dir, monitor
        self._writers: dict[str, Any] = {}

    def _writer(self, name: str) -> Any:
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        try:  # the graph is a convenience: a model tf.function cannot trace must not fail the job
            inputs = [tf.TensorSpec((None, *i.shape[1:]), i.dtype) for i in self.model.inputs]
            graph = tf.function(lambda *x: self.model(list(x) if len(x) > 1 else x[0])).get_concrete_function(*inputs)
            with self._writer("train").as_default():
                tf.summary.graph(graph.graph)
        except Exception as exc:  # noqa: BLE001
            log.info("no TensorBoard graph for this model: %s", exc)

    def _epoch(self, epoch: int, logs: dict[str, Any] | None) -> None:
        step = epoch + 1
        for key, value in (logs or {}).items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if isinstance(value, int | float) and math.isfinite(value):
                with self._writer(split).as_default():
                    scalar(f"epoch_{name}", float(value), step=step)
        self._monitored(step)
        for writer in self._writers.values():
            writer.flush()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        try:
            self._epoch(epoch, logs)
        except Exception:  # noqa: BLE001  (the event files are a view of the run, not the run)
            log.warning("TensorBoard files of epoch %d not written", epoch + 1, exc_info=True)

    def _monitored(self, step: int) -> None:
        record = self.monitor.history[-1] if self.monitor is not None and self.monitor.history else None
        if record is None or record.epoch != step:
            return
        with self._writer("train").as_default():
            if record.pinned_fraction is not None:
                scalar("monitor/saturation", record.pinned_fraction, step=step)
            if record.top_class_share is not None:
                scalar("monitor/top_class_share", record.top_class_share, step=step)
            for layer, norm in enumerate(record.gradient_norms or []):
                if math.isfinite(norm):
                    scalar(f"monitor/gradient_norm/layer_{layer}", norm, step=step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
