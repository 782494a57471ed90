"""Spec compile/fit parts → Keras optimizer, loss, metrics and callbacks."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras.src.trainers.compile_utils import CompileLoss, CompileMetrics

from keras_bridge.catalog import ABSTRACT, abstract_error, check_arguments, did_you_mean, public_classes, resolve_class
from keras_bridge.errors import Loc, SpecError, SpecIssue, keras_message
from keras_bridge.namespaces import check_no_serialized
from models.spec import CompileSpec, FitSpec, KerasObject, KerasRef

OPTIMIZERS = public_classes(keras.optimizers, keras.optimizers.Optimizer)
LOSSES = public_classes(keras.losses, keras.losses.Loss)
METRICS = public_classes(keras.metrics, keras.metrics.Metric)
# Callbacks that make sense on a service; the rest write files or run code.
# ModelCheckpoint keeps the best weights: the worker chooses its file path.
CALLBACKS = {
    name: getattr(keras.callbacks, name)
    for name in ("EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "ModelCheckpoint")
}
REFUSED_CALLBACKS = [n for n in dir(keras.callbacks) if not n.startswith("_") and n not in CALLBACKS]
SERVICE_OWNED_ARGS = {"ModelCheckpoint": ("filepath",)}
# compile() resolves these against the loss itself.
COMPILE_METRIC_ALIASES = ("accuracy", "acc", "crossentropy", "ce")


def _construct(ref: KerasObject, classes: dict[str, type], loc: Loc, what: str, **extra: Any) -> Any:
    refused = frozenset(REFUSED_CALLBACKS) if what == "callback" else frozenset()
    cls = resolve_class(ref.type, classes, loc=(*loc, "type"), what=what, refused=refused)
    check_arguments(cls, ref.args, loc=loc, what=what, reserved=SERVICE_OWNED_ARGS.get(ref.type, ()))
    for name, value in ref.args.items():
        check_no_serialized(value, (*loc, name))
    try:
        return cls(**ref.args, **extra)
    except Exception as exc:
        raise SpecError([SpecIssue(loc, keras_message(exc))]) from exc


def _by_name(getter: Any, name: str, loc: Loc, what: str, module: Any, extra: Iterable[str] = ()) -> Any:
    if name in ABSTRACT:
        raise abstract_error(name, loc=loc, what=what)
    try:
        return getter(name)
    except Exception as exc:
        names = [*extra, *(n for n in dir(module)
                            if not n.startswith("_") and n not in ("get", "serialize", "deserialize"))]
        hint = did_you_mean(name, names)
        raise SpecError([SpecIssue(loc, f"unknown {what} '{name}'.{hint}")]) from exc


def make_optimizer(ref: KerasRef) -> keras.optimizers.Optimizer:
    loc: Loc = ("compile", "optimizer")
    if isinstance(ref, str):
        return _by_name(keras.optimizers.get, ref, loc, "optimizer", keras.optimizers)
    return _construct(ref, OPTIMIZERS, loc, "optimizer")


def make_loss(ref: KerasRef) -> Any:
    loc: Loc = ("compile", "loss")
    if isinstance(ref, str):
        return _by_name(keras.losses.get, ref, loc, "loss", keras.losses)
    return _construct(ref, LOSSES, loc, "loss")


def make_metrics(refs: list[KerasRef]) -> list[Any]:
    metrics = []
    for index, ref in enumerate(refs):
        loc: Loc = ("compile", "metrics", index)
        if isinstance(ref, str) and ref in COMPILE_METRIC_ALIASES:
            metrics.append(ref)
        elif isinstance(ref, str):
            _by_name(keras.metrics.get, ref, loc, "metric", keras.metrics, COMPILE_METRIC_ALIASES)
            metrics.append(ref)
        else:
            metrics.append(_construct(ref, METRICS, loc, "metric"))
    return metrics


def compile_model(model: keras.Model, spec: CompileSpec, **speed: Any) -> None:
    """``speed``: ``model.compile``'s speed arguments (``steps_per_execution``, ``jit_compile``), the worker's."""
    model.compile(optimizer=make_optimizer(spec.optimizer), loss=make_loss(spec.loss),
                  metrics=make_metrics(spec.metrics), **speed)


def make_callbacks(spec: FitSpec, checkpoint_dir: Path) -> list[keras.callbacks.Callback]:
    callbacks = []
    for index, ref in enumerate(spec.callbacks):
        loc: Loc = ("fit", "callbacks", index)
        extra = {}
        if ref.type == "ModelCheckpoint":
            extra["filepath"] = str(checkpoint_dir / "best.keras")
        callbacks.append(_construct(ref, CALLBACKS, loc, "callback", **extra))
    return callbacks


def optimizer_slots(ref: KerasRef) -> int:
    """Take one zero step with a fresh optimizer of the spec, as training will, on a
    3-element weight; returns the slots it keeps per weight (Adam 2, SGD 0, ...).

    Catches what only fails at the first step (the base ``Optimizer`` class).
    """
    optimizer = make_optimizer(ref)
    weight = keras.Variable(np.zeros(3, "float32"), name="probe")
    try:
        optimizer.apply([np.zeros(3, "float32")], [weight])
    except Exception as exc:
        raise SpecError([SpecIssue(("compile", "optimizer"),
                                   f"this optimizer cannot take a training step: {keras_message(exc)}")]) from exc
    return sum(1 for v in optimizer.variables if tuple(v.shape) == (3,))


def _zero_batches(model: keras.Model) -> list[tuple[Any, Any]]:
    """(targets, predictions) of two samples, targets first as dense as the outputs,
    then as class indices (sparse losses and metrics): the data decides which fits."""
    shapes = [tuple(2 if i == 0 else (d or 1) for i, d in enumerate(t.shape)) for t in model.outputs]
    predictions = [np.zeros(s, "float32") for s in shapes]
    dense = [np.zeros(s, "float32") for s in shapes]
    sparse = [np.zeros(s[:-1] or (2,), "int32") for s in shapes]
    single = len(shapes) == 1
    return [(y[0] if single else y, predictions[0] if single else predictions) for y in (dense, sparse)]


def _first_that_runs(attempt: Any, model: keras.Model, loc: Loc, what: str) -> None:
    errors = []
    for y_true, y_pred in _zero_batches(model):
        try:
            attempt(y_true, y_pred)
            return
        except Exception as exc:
            errors.append(exc)
    raise SpecError([SpecIssue(loc,
                               f"this {what} cannot be computed on the model's output: {keras_message(errors[0])}")])


def probe_loss_and_metrics(model: keras.Model, spec: CompileSpec) -> None:
    """Compute the loss and each metric once, as ``model.compile`` sets them up, on a zero
    batch of the model's output shape: what would fail on the first training step fails here."""
    output_names = getattr(model, "output_names", None)
    loss = make_loss(spec.loss)
    _first_that_runs(lambda y, p: CompileLoss(loss, None, output_names=output_names)(y, p), model,
                     ("compile", "loss"), "loss")
    for index, metric in enumerate(make_metrics(spec.metrics)):
        def evaluate(y: Any, p: Any, metric: Any = metric) -> None:
            compiled = CompileMetrics([metric], None, output_names=output_names)
            compiled.update_state(y, p)
            compiled.result()
        _first_that_runs(evaluate, model, ("compile", "metrics", index), "metric")
