"""Check a whole spec against Keras without training: the API's dry run.

The API never runs this itself: it sends the spec to a validator child process
(``api/validation``), which calls ``check_spec_json`` and, after answering,
``reset_after_check``. The worker calls ``check_spec`` directly.
"""

import gc
import tempfile
from pathlib import Path
from typing import Any

import keras

from keras_bridge.errors import SpecError
from keras_bridge.layers import build_model
from keras_bridge.summary import model_summary
from keras_bridge.training import make_callbacks, make_loss, make_metrics, make_optimizer
from models.spec import JobSpec


def check_spec(spec: JobSpec, *, clear_session: bool = True) -> dict[str, Any]:
    """Build model, optimizer, loss, metrics and callbacks; return the model summary.

    Keras's name counters and graph building are process-global: callers check
    one spec at a time per process (a validator child serves one request at a
    time; a worker trains one job at a time).

    Args:
        clear_session: reset Keras's global state afterwards; the worker passes
            False while a model of its own is training in the same process.

    Raises:
        SpecError: every problem found, each with its JSON path.
    """
    issues = []
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


def check_spec_json(spec: dict[str, Any]) -> dict[str, Any]:
    """``check_spec`` for a validator child, JSON in and out.

    Returns:
        ``{"summary": <model summary>}``, or ``{"issues": [{"loc", "message"}, ...]}``.
    """
    try:
        # The child resets Keras itself after answering (reset_after_check).
        return {"summary": check_spec(JobSpec.model_validate(spec), clear_session=False)}
    except SpecError as exc:
        return {"issues": [{"loc": list(issue.loc), "message": issue.message} for issue in exc.issues]}


def reset_after_check() -> None:
    """Keras's process-global state back to fresh between two checks in one child.

    Runs after the answer is sent. The checked model's weights sit in reference
    cycles; collecting the young generations frees them now (~10 ms), where
    Keras's full ``gc.collect()`` costs ~0.4 s and would delay the next request.
    """
    keras.backend.clear_session(free_memory=False)
    gc.collect(1)
