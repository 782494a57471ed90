"""Check a whole spec against Keras without training: the API's dry run."""

import tempfile
import threading
from pathlib import Path
from typing import Any

from keras_bridge import global_state
from keras_bridge.budget import build_within_budget
from keras_bridge.errors import SpecError
from keras_bridge.limits import Budgets
from keras_bridge.summary import model_summary
from keras_bridge.training import compile_model, make_callbacks, optimizer_slots, probe_loss_and_metrics
from models.settings import Settings
from models.spec import JobSpec

# Keras's name counters and graph building are process-global state.
_lock = threading.Lock()


def check_spec(spec: JobSpec, *, clear_session: bool = True, settings: Settings | None = None) -> dict[str, Any]:
    """Build the model from shapes, check it against the budgets, then set up the
    optimizer, loss, metrics and callbacks as training will and run each once on a
    zero batch; return the model summary (with the memory estimate).

    Args:
        clear_session: reset Keras's session before and after; the worker passes
            False while a model of its own is training in the same process.
        settings: where the budgets come from (``TRAINYARD_*`` by default).

    Raises:
        SpecError: every problem found, each with its JSON path.
    """
    budgets = Budgets.from_settings(settings)
    with _lock:
        global_state.reset(clear_session=clear_session)
        try:
            return _check(spec, budgets)
        finally:
            if clear_session:
                global_state.reset()


def _check(spec: JobSpec, budgets: Budgets) -> dict[str, Any]:
    issues = []
    slots = 2
    for part in (lambda: optimizer_slots(spec.compile.optimizer),
                 lambda: make_callbacks(spec.fit, Path(tempfile.gettempdir()))):
        try:
            result = part()
            slots = result if isinstance(result, int) else slots
        except SpecError as exc:
            issues.extend(exc.issues)
    try:
        model, estimate = build_within_budget(spec, budgets, slots, materialize=False)
    except SpecError as exc:
        raise SpecError([*exc.issues, *issues]) from exc
    if issues:
        raise SpecError(issues)
    for part in (lambda: compile_model(model, spec.compile), lambda: probe_loss_and_metrics(model, spec.compile)):
        try:
            part()
        except SpecError as exc:
            issues.extend(exc.issues)
            break
    if issues:
        raise SpecError(issues)
    return {**model_summary(model), "memory": estimate.as_json()}
