"""Check a whole spec against Keras without training: the API's dry run.

The API never runs this itself: it sends the spec to a validator child process
(``api/validation``), which calls ``check_spec_json`` and, after answering,
``reset_after_check``. The worker calls ``check_spec`` directly.
"""

import gc
import tempfile
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


def check_spec(spec: JobSpec, *, clear_session: bool = True, settings: Settings | None = None) -> dict[str, Any]:
    """Build the model from shapes, check it against the budgets, then set up the
    optimizer, loss, metrics and callbacks as training will and run each once on a
    zero batch; return the model summary (with the memory estimate).

    Keras's name counters and graph building are process-global: callers check
    one spec at a time per process (a validator child serves one request at a
    time; a worker trains one job at a time).

    Args:
        clear_session: reset Keras's session before and after; the worker passes
            False while a model of its own is training in the same process.
        settings: where the budgets come from (``TRAINYARD_*`` by default).

    Raises:
        SpecError: every problem found, each with its JSON path.
    """
    budgets = Budgets.from_settings(settings)
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


def check_spec_json(request: dict[str, Any]) -> dict[str, Any]:
    """``check_spec`` for a validator child, JSON in and out.

    Args:
        request: ``{"spec": <job spec>, "budgets": <Settings.budgets() of the API>}``.

    Returns:
        ``{"summary": <model summary>}``, or ``{"issues": [{"loc", "message"}, ...]}``.
    """
    settings = Settings(**request.get("budgets", {}))
    try:
        # The child resets Keras itself after answering (reset_after_check).
        return {"summary": check_spec(JobSpec.model_validate(request["spec"]), clear_session=False, settings=settings)}
    except SpecError as exc:
        return {"issues": [{"loc": list(issue.loc), "message": issue.message} for issue in exc.issues]}


def reset_after_check() -> None:
    """Keras's process-global state back to fresh between two checks in one child.

    Runs after the answer is sent. The checked model's weights sit in reference
    cycles; collecting the young generations frees them now (~10 ms), where
    Keras's full ``gc.collect()`` costs ~0.4 s and would delay the next request.
    """
    global_state.reset()  # clears the session too
    gc.collect(1)
