"""Check a whole spec against Keras without training: the API's dry run."""

import tempfile
import threading
from pathlib import Path
from typing import Any

import keras

from keras_bridge.errors import SpecError
from keras_bridge.layers import build_model
from keras_bridge.summary import model_summary
from keras_bridge.training import make_callbacks, make_loss, make_metrics, make_optimizer
from models.spec import JobSpec

# Keras's name counters and graph building are process-global state.
_lock = threading.Lock()


def check_spec(spec: JobSpec, *, clear_session: bool = True) -> dict[str, Any]:
    """Build model, optimizer, loss, metrics and callbacks; return the model summary.

    Args:
        clear_session: reset Keras's global state afterwards; the worker passes
            False while a model of its own is training in the same process.

    Raises:
        SpecError: every problem found, each with its JSON path.
    """
    issues = []
    with _lock:
        try:
            model = build_model(spec.model)
        except SpecError as exc:
            issues.extend(exc.issues)
            model = None
        for part in (
            lambda: make_optimizer(spec.compile.optimizer),
            lambda: make_loss(spec.compile.loss),
            lambda: make_metrics(spec.compile.metrics),
            lambda: make_callbacks(spec.fit, Path(tempfile.gettempdir())),
        ):
            try:
                part()
            except SpecError as exc:
                issues.extend(exc.issues)
        if issues:
            raise SpecError(issues)
        assert model is not None
        summary = model_summary(model)
        if clear_session:  # without the full gc.collect, which costs ~200 ms a call
            keras.backend.clear_session(free_memory=False)
    return summary
