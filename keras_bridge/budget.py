"""What a spec costs, computed from shapes before any weight is allocated.

The model is built inside Keras's ``StatelessScope``: variables created there get
their shape and dtype but no value (keras/src/backend/common/variables.py registers
them as uninitialised), so a ``Dense(units=1_000_000_000)`` costs nothing to check.
Only a model within its budgets gets its weights (``Deferred.materialize``).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras.src.backend.common import global_state
from keras.src.backend.common.stateless_scope import StatelessScope

from keras_bridge.errors import Loc, SpecError, SpecIssue
from keras_bridge.layers import LAYER_ARGS, build_model
from keras_bridge.limits import Budgets, check_arguments_size
from keras_bridge.namespaces import check_keras_config
from models.spec import JobSpec, KerasObject, LayersModel

GIB = 1024**3
# A forward-only batch (validation, test) may take this much even where the training step's own
# estimate is smaller: small against any worker's memory, and enough for a few hundred images.
FORWARD_BATCH_BYTES = 64 * 1024**2


class Deferred:
    """Build inside: variables get shapes only. ``materialize()`` gives them their values."""

    def __enter__(self) -> "Deferred":
        self._before = list(global_state.get_global_attribute("uninitialized_variables") or [])
        self._scope = StatelessScope(initialize_variables=False)
        self._scope.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._scope.__exit__(*exc)
        known = {id(v) for v in self._before}
        registered = global_state.get_global_attribute("uninitialized_variables") or []
        self.variables = [v for v in registered if id(v) not in known]
        # Keras would initialise whatever is registered at the next scope exit: keep it to ours.
        global_state.set_global_attribute("uninitialized_variables", self._before)

    def materialize(self) -> None:
        for variable in self.variables:
            if variable._value is None:
                variable._deferred_initialize()


def _itemsize(dtype: Any) -> int:
    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 2 if "16" in str(dtype) else 4  # bfloat16 and friends numpy does not know


def _elements(shape: Any, batch: int = 1) -> int:
    """Elements of a tensor of ``shape``: the batch axis is ``batch``, other unknown axes 1."""
    dims = list(shape)
    return batch * math.prod(d or 1 for d in dims[1:]) if dims else 1


def _layer_count(spec: LayersModel) -> int:
    def nested(obj: KerasObject) -> int:
        return 1 + sum(nested(KerasObject.model_validate(v)) for k, v in obj.args.items()
                       if k in LAYER_ARGS and isinstance(v, dict) and isinstance(v.get("type"), str))
    return sum(nested(layer) for layer in spec.layers)


def check_spec_values(spec: JobSpec, budgets: Budgets) -> None:
    """Argument sizes everywhere, the layer count and the namespaces of the ``{"keras"}``
    form: all from the JSON, before Keras constructs anything."""
    issues = []
    parts: list[tuple[Loc, dict[str, Any]]] = []
    if isinstance(spec.model, LayersModel):
        parts += [(("model", "layers", i), layer.args) for i, layer in enumerate(spec.model.layers)]
    for name, ref in (("optimizer", spec.compile.optimizer), ("loss", spec.compile.loss)):
        if isinstance(ref, KerasObject):
            parts.append((("compile", name), ref.args))
    parts += [(("compile", "metrics", i), m.args)
              for i, m in enumerate(spec.compile.metrics) if isinstance(m, KerasObject)]
    parts += [(("fit", "callbacks", i), c.args) for i, c in enumerate(spec.fit.callbacks)]
    for loc, args in parts:
        try:
            check_arguments_size(args, loc, budgets)
        except SpecError as exc:
            issues.extend(exc.issues)
    if issues:
        raise SpecError(issues)
    if isinstance(spec.model, LayersModel):
        count, loc = _layer_count(spec.model), ("model", "layers")
    else:
        count, loc = check_keras_config(spec.model.keras, ("model", "keras"), budgets), ("model", "keras")
    if count > budgets.max_layers:
        raise SpecError([SpecIssue(loc, f"a model may have at most {budgets.max_layers} layers (nested ones included). "
                                        f"Received: {count} layers.")])


def _layer_loc(spec: JobSpec, model: keras.Model, layer: keras.layers.Layer) -> Loc:
    index = model.layers.index(layer)
    if isinstance(spec.model, LayersModel):
        return ("model", "layers", index - 1)  # model.layers[0] is the input
    return ("model", "keras", "config", "layers", index)


def check_params(spec: JobSpec, model: keras.Model, budgets: Budgets) -> int:
    total = sum(math.prod(v.shape) for v in model.weights)
    if total <= budgets.max_params:
        return total
    biggest = max(model.layers, key=lambda layer: sum(math.prod(v.shape) for v in layer.weights))
    alone = sum(math.prod(v.shape) for v in biggest.weights)
    raise SpecError([SpecIssue(_layer_loc(spec, model, biggest), (
        f"the model would have {total:,} parameters, over the limit of {budgets.max_params:,}; "
        f"layer '{biggest.name}' ({type(biggest).__name__}) alone has {alone:,}."))])


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training step of ``batch_size`` samples needs, from shapes and dtypes."""

    batch_size: int
    inputs_bytes: int  # inputs and targets of one batch
    activations_bytes: int  # every layer's outputs and their gradients
    weights_bytes: int  # weights, their gradients and the optimizer's slots
    per_sample_bytes: int
    limit_bytes: int

    @property
    def batch_bytes(self) -> int:
        return self.inputs_bytes + self.activations_bytes + self.weights_bytes

    def forward_batch_size(self, samples: int) -> int:
        """Samples per batch of a forward pass alone (validation, test), at least ``batch_size``.

        A forward pass keeps no activation for a gradient: a sample costs its inputs and its
        activations once (``activations_bytes`` counts them twice), so a batch fills the memory of
        the training step (or ``FORWARD_BATCH_BYTES``) with more samples. Fewer, larger batches
        make fewer calls for the same arithmetic; the per-sample losses are the same, their mean
        differs from the training batch's by float round-off only (summation order).
        """
        forward_per_sample = (self.inputs_bytes + self.activations_bytes // 2) / max(self.batch_size, 1)
        room = max(self.inputs_bytes + self.activations_bytes, FORWARD_BATCH_BYTES)
        fits = int(room // forward_per_sample) if forward_per_sample > 0 else samples
        return max(self.batch_size, min(samples, fits))

    def as_json(self) -> dict[str, int]:
        return {"batch_bytes": self.batch_bytes, "limit_bytes": self.limit_bytes, "batch_size": self.batch_size,
                "inputs_bytes": self.inputs_bytes, "activations_bytes": self.activations_bytes,
                "weights_bytes": self.weights_bytes}

    def describe(self) -> str:
        return (f"one batch of {self.batch_size} needs about {self.batch_bytes / GIB:.2f} GiB "
                f"(inputs {self.inputs_bytes / GIB:.2f}, activations and their gradients "
                f"{self.activations_bytes / GIB:.2f}, weights with gradients and optimizer slots "
                f"{self.weights_bytes / GIB:.2f}); a worker offers {self.limit_bytes / GIB:.2f} GiB")


def _outputs(model: keras.Model) -> Iterator[Any]:
    """The symbolic output of every layer call in the model, nested models included."""
    for layer in model._flatten_layers(include_self=False):
        for node in getattr(layer, "_inbound_nodes", []):
            yield from node.outputs


def estimate_memory(model: keras.Model, batch_size: int, optimizer_slots: int, budgets: Budgets) -> MemoryEstimate:
    def sized(tensors: Any, batch: int, itemsize: int | None = None) -> int:
        return sum(_elements(t.shape, batch) * (itemsize or _itemsize(t.dtype)) for t in tensors)

    io = [*model.inputs, *model.outputs]  # targets are the size of the outputs; both arrive as float32
    activations = [t for t in _outputs(model) if not any(t is i for i in model.inputs)]
    per_sample = sized(io, 1, 4) + 2 * sized(activations, 1)
    trainable = sum(math.prod(v.shape) * _itemsize(v.dtype) for v in model.trainable_weights)
    fixed = sum(math.prod(v.shape) * _itemsize(v.dtype) for v in model.non_trainable_weights)
    return MemoryEstimate(
        batch_size=batch_size,
        inputs_bytes=sized(io, batch_size, 4),
        activations_bytes=2 * sized(activations, batch_size),
        weights_bytes=trainable * (2 + optimizer_slots) + fixed,
        per_sample_bytes=per_sample,
        limit_bytes=budgets.worker_memory_bytes,
    )


def check_memory(spec: JobSpec, model: keras.Model, estimate: MemoryEstimate) -> None:
    if estimate.batch_bytes <= estimate.limit_bytes:
        return
    room = estimate.limit_bytes - estimate.weights_bytes
    fits = room // estimate.per_sample_bytes if room > 0 and estimate.per_sample_bytes else 0
    advice = f"at most batch_size={fits} fits" if fits else "no batch size fits: the weights alone are too large"
    issues = [SpecIssue(("fit", "batch_size"), f"{estimate.describe()}; {advice}.")]
    shape = list(model.inputs[0].shape[1:3]) if model.inputs and len(model.inputs[0].shape) == 4 else None
    if shape == list(spec.data.image_size):
        issues.append(SpecIssue(("data", "image_size"),
                                f"images of {shape[0]}x{shape[1]} pixels: {estimate.describe()}; "
                                "smaller images or a smaller batch_size would fit."))
    raise SpecError(issues)


def build_within_budget(spec: JobSpec, budgets: Budgets, optimizer_slots: int, *,
                        materialize: bool) -> tuple[keras.Model, MemoryEstimate]:
    """The spec's model, checked against every budget before its weights exist.

    Args:
        optimizer_slots: per weight, from ``training.optimizer_slots``.
        materialize: give the weights their values (the worker); the dry run does not.
    """
    check_spec_values(spec, budgets)
    with Deferred() as deferred:
        model = build_model(spec.model, budgets)
    check_params(spec, model, budgets)
    estimate = estimate_memory(model, spec.fit.batch_size, optimizer_slots, budgets)
    check_memory(spec, model, estimate)
    if materialize:
        deferred.materialize()
    return model, estimate


class OutOfMemory(Exception):
    """Training ran out of memory; the message names the estimate it was admitted with."""

    def __init__(self, estimate: MemoryEstimate | None, cause: BaseException) -> None:
        what = estimate.describe() if estimate is not None else "no estimate"
        super().__init__(f"training ran out of memory ({type(cause).__name__}): {what}. "
                         "Use a smaller fit.batch_size or a smaller model.")
        self.estimate = estimate


def is_out_of_memory(exc: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(exc, (MemoryError, tf.errors.ResourceExhaustedError))
