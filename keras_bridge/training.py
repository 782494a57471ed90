"""Spec compile/fit parts → Keras optimizer, loss, metrics and callbacks."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras

from keras_bridge.catalog import check_arguments, did_you_mean, public_classes, resolve_class
from keras_bridge.errors import Loc, SpecError, SpecIssue, keras_message
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
    try:
        return cls(**ref.args, **extra)
    except Exception as exc:
        raise SpecError([SpecIssue(loc, keras_message(exc))]) from exc


def _by_name(getter: Any, name: str, loc: Loc, what: str, module: Any, extra: Iterable[str] = ()) -> Any:
    try:
        return getter(name)
    except Exception as exc:
        names = [*extra, *(n for n in dir(module) if not n.startswith("_") and n not in ("get", "serialize", "deserialize"))]
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


def compile_model(model: keras.Model, spec: CompileSpec) -> None:
    model.compile(optimizer=make_optimizer(spec.optimizer), loss=make_loss(spec.loss), metrics=make_metrics(spec.metrics))


def make_callbacks(spec: FitSpec, checkpoint_dir: Path) -> list[keras.callbacks.Callback]:
    callbacks = []
    for index, ref in enumerate(spec.callbacks):
        loc: Loc = ("fit", "callbacks", index)
        extra = {}
        if ref.type == "ModelCheckpoint":
            extra["filepath"] = str(checkpoint_dir / "best.keras")
        callbacks.append(_construct(ref, CALLBACKS, loc, "callback", **extra))
    return callbacks
