"""Fixes for the training-phase findings, as merge patches of the spec: one builder per code
(bound to its code in ``diagnosis/registry.py``), each reading the run's evidence.

The first suggestion is the one the auto-repair and "retry with the top
suggestion" use: when preflight found causes whose fix changes training, their
combined fix comes first, since a stuck or saturated model is most often the
consequence of them. Learning-rate advice goes the way the evidence points
(``_rate_fix``): never lower an already small rate of a run whose gradients vanished.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from diagnosis.curves import Epoch, Task
from diagnosis.facts import keras_name, snake
from diagnosis.patches import patch_from
from diagnosis.preflight.optimization import USUAL_LR
from models.findings import Suggestion

Spec = dict[str, Any]
# Keras's string names of optimizers → their classes, to add arguments to "adam".
OPTIMIZER_CLASSES = {
    "adam": "Adam", "adamw": "AdamW", "nadam": "Nadam", "adamax": "Adamax", "rmsprop": "RMSprop", "sgd": "SGD",
    "adagrad": "Adagrad", "adadelta": "Adadelta", "ftrl": "Ftrl", "lion": "Lion", "adafactor": "Adafactor",
    "lamb": "Lamb",
}


def _learning_rate(spec: Spec) -> float:
    _, args = keras_name(spec["compile"]["optimizer"])
    rate = args.get("learning_rate")
    return float(rate) if isinstance(rate, (int, float)) else 1e-3


def _scale_learning_rate(factor: float, clipnorm: bool = False):
    def fix(spec: Spec) -> None:
        name, args = keras_name(spec["compile"]["optimizer"])
        args = {**args, "learning_rate": float(f"{_learning_rate(spec) * factor:.3g}")}
        if clipnorm:
            args["clipnorm"] = 1.0
        spec["compile"]["optimizer"] = {"type": OPTIMIZER_CLASSES.get(name.lower(), name), **args}
    return fix


def _add_callback(callback: dict[str, Any]):
    def fix(spec: Spec) -> None:
        callbacks = [c for c in spec["fit"].get("callbacks", []) if c["type"] != callback["type"]]
        spec["fit"]["callbacks"] = [*callbacks, callback]
    return fix


def _batch_norm_after_first_weight_layer(spec: Spec) -> None:
    layers = spec["model"].get("layers")
    if not layers:
        return
    index = next((i for i, lyr in enumerate(layers) if lyr["type"].startswith(("Conv", "Dense"))), None)
    if index is not None and index < len(layers) - 1 and layers[index + 1]["type"] != "BatchNormalization":
        layers.insert(index + 1, {"type": "BatchNormalization"})


def _dropout_before_output(spec: Spec) -> None:
    layers = spec["model"].get("layers")
    if layers and len(layers) > 1 and layers[-2]["type"] != "Dropout":
        layers.insert(len(layers) - 1, {"type": "Dropout", "rate": 0.3})


def _conv_stack(spec: Spec) -> list[int]:
    return [i for i, layer in enumerate(spec["model"].get("layers") or []) if layer["type"] in CONVOLUTIONS]


def _tiny_or_dropped(spec: Spec) -> bool:
    """A conv stack of 2-wide kernels, or with Dropout between its convolutions."""
    layers, convs = spec["model"].get("layers") or [], _conv_stack(spec)
    if len(convs) < 3:
        return False
    tiny = any(max(_as_list(layers[i].get("kernel_size"))) <= 2 for i in convs)
    dropped = any(layers[i]["type"] == "Dropout" for i in range(convs[0], convs[-1]))
    return tiny or dropped


def _as_list(value: Any) -> list[int]:
    return value if isinstance(value, list) else [value] if isinstance(value, int) else [3]


def _open_up_conv_stack(spec: Spec) -> None:
    """3-wide kernels with 'same' padding, and no Dropout between the convolutions
    (the story-4 fix: a deep stack of 2x2 kernels with Dropout(0.4) after every
    block never gets past chance)."""
    layers, convs = spec["model"]["layers"], _conv_stack(spec)
    for i in convs:
        if max(_as_list(layers[i].get("kernel_size"))) <= 2:
            layers[i]["kernel_size"] = 3
        layers[i]["padding"] = "same"
    spec["model"]["layers"] = [lyr for i, lyr in enumerate(layers)
                               if not (lyr["type"] == "Dropout" and convs[0] < i < convs[-1] + 2)]


CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
EARLY_STOPPING = {"type": "EarlyStopping", "monitor": "val_loss", "patience": 3, "restore_best_weights": True}


@dataclass(frozen=True)
class Context:
    """What a training finding's fixes are chosen from: the spec, the combined preflight fix
    (``diagnosis.repair``: patch, what it applied), the epochs so far and the task's reference levels."""

    spec: Spec
    preflight_fix: tuple[dict[str, Any], list[str]] | None = None
    history: Sequence[Epoch] = ()
    task: Task | None = None


Builder = Callable[[Context], list[Suggestion]]
# Parts of a spec that do not change what is trained: a fix made only of them cannot make a dead run learn.
NOT_TRAINING = {"name", "webhook", "diagnosis", "force"}
SMALL_GRADIENT = 1e-3  # largest layer gradient norm of the probe batch
VANISHED_RATIO = 1e-2  # first layer's gradient norm against the last layer's


def changes_training(patch: dict[str, Any]) -> bool:
    """Whether a merge patch touches what is trained (not only metrics, name, webhook, diagnosis)."""
    rest = {k: v for k, v in patch.items() if k not in NOT_TRAINING}
    if isinstance(rest.get("compile"), dict):
        rest["compile"] = {k: v for k, v in rest["compile"].items() if k != "metrics"}
    return any(v != {} for v in rest.values())


def keeps_what_learnt(patch: dict[str, Any]) -> bool:
    """Whether a fix leaves the model, its loss and its optimizer alone: the only kind offered to a job
    that learnt (story 1's job reached val accuracy 1.0; its preflight fix, relu and no Masking, did not learn)."""
    compile_ = patch.get("compile") or {}
    return "model" not in patch and not ({"optimizer", "loss"} & set(compile_))


def preflight_first(context: Context) -> list[Suggestion]:
    """The combined fix of what preflight found, when it changes training (a stuck or saturated model is
    most often their consequence); a metric-only fix cannot help a run that does not learn."""
    if not context.preflight_fix or not context.preflight_fix[0] or not changes_training(context.preflight_fix[0]):
        return []
    patch, applied = context.preflight_fix
    return [Suggestion(summary="fix the causes found before training: " + "; ".join(applied), patch=patch)]


def _optimizer(spec: Spec) -> tuple[float, float, float]:
    """(learning rate, the optimizer's Keras default, the top of its usual range)."""
    name, _ = keras_name(spec["compile"]["optimizer"])
    _, high, default = USUAL_LR.get(snake(name).replace("_", ""), USUAL_LR["adam"])
    rate = _learning_rate(spec)
    return rate, default, high


def _small_gradients(history: Sequence[Epoch]) -> bool | None:
    """From the last probe: are the gradients small (all of them, or the first layer's against the last)?
    None when no gradients were measured."""
    norms = next((e.gradient_norms for e in reversed(history) if e.gradient_norms), None)
    if not norms:
        return None
    return max(norms) < SMALL_GRADIENT or (len(norms) > 1 and norms[0] < VANISHED_RATIO * max(norms[-1], 1e-30))


def _rate_fix(context: Context) -> list[Suggestion]:
    """For a model that does not learn: the learning rate moves in the direction the evidence supports.

    A rate well above its optimizer's default kills units (lower it). A rate at or below the default
    with small gradients is too small a step on a flat loss (raise it, or give the inputs unit scale);
    lowering it further would repeat the dead run more slowly. In between, the rate is not the lever.
    """
    spec = context.spec
    rate, default, high = _optimizer(spec)
    if rate > 3 * default:
        return [Suggestion(summary=f"learning rate {rate / 10:.3g} (a rate this large kills units)",
                           patch=patch_from(spec, _scale_learning_rate(0.1)))]
    if rate > default or _small_gradients(context.history) is False:
        return []
    out = []
    if rate * 10 <= high * 1.0001:
        out.append(Suggestion(summary=f"learning rate {rate * 10:.3g} (the gradients are small and so is the rate)",
                              patch=patch_from(spec, _scale_learning_rate(10))))
    if spec["data"].get("scale_x") is None:
        # rescale divides by the largest magnitude: padding zeros stay zeros, so Masking still works.
        out.append(Suggestion(summary="rescale the inputs to [-1, 1] (data.scale_x: rescale)",
                              patch=patch_from(spec, lambda s: s["data"].update(scale_x="rescale"))))
    return out


def _batch_norm(context: Context) -> list[Suggestion]:
    if "layers" not in context.spec["model"]:
        return []
    return [Suggestion(summary="BatchNormalization after the first layer",
                       patch=patch_from(context.spec, _batch_norm_after_first_weight_layer))]


def overfitting(context: Context) -> list[Suggestion]:
    spec, out = context.spec, []
    if not any(c["type"] == "EarlyStopping" for c in spec["fit"].get("callbacks", [])):
        out.append(Suggestion(summary="stop at the best epoch (EarlyStopping, restore_best_weights)",
                              patch=patch_from(spec, _add_callback(EARLY_STOPPING))))
    if "layers" in spec["model"]:
        out.append(Suggestion(summary="Dropout(0.3) before the output layer",
                              patch=patch_from(spec, _dropout_before_output)))
    return out


def diverging(context: Context) -> list[Suggestion]:
    rate = _learning_rate(context.spec)
    return [*preflight_first(context),
            Suggestion(summary=f"learning rate {rate / 10:.3g} with gradient clipping",
                       patch=patch_from(context.spec, _scale_learning_rate(0.1, clipnorm=True)))]


def unstable(context: Context) -> list[Suggestion]:
    spec, out = context.spec, preflight_first(context)
    if spec["fit"]["batch_size"] < 32:
        out.append(Suggestion(summary="batch size 32",
                              patch=patch_from(spec, lambda s: s["fit"].update(batch_size=32))))
    rate = _learning_rate(spec)
    out.append(Suggestion(summary=f"learning rate {rate / 10:.3g}", patch=patch_from(spec, _scale_learning_rate(0.1))))
    return out


def plateau(context: Context) -> list[Suggestion]:
    reduce = Suggestion(summary="ReduceLROnPlateau on the validation loss", patch=patch_from(
        context.spec,
        _add_callback({"type": "ReduceLROnPlateau", "monitor": "val_loss", "factor": 0.3, "patience": 2})))
    return [*preflight_first(context), reduce, *_rate_fix(context)]


def stuck_at_chance(context: Context) -> list[Suggestion]:
    spec, out = context.spec, preflight_first(context)
    if "layers" in spec["model"] and _tiny_or_dropped(spec):
        out.append(Suggestion(summary="3x3 kernels with padding 'same' and no Dropout between the convolutions",
                              patch=patch_from(spec, _open_up_conv_stack)))
    return [*out, *_rate_fix(context), *_batch_norm(context)]


def vanishing_gradients(context: Context) -> list[Suggestion]:
    return [*preflight_first(context), *_rate_fix(context), *_batch_norm(context)]


def saturated_outputs(context: Context) -> list[Suggestion]:
    """Confidently wrong outputs: from a large rate, lower it (by 100 when far too large); at a usual rate
    the cause is elsewhere (inputs, initialisation), and normalising the first layer's outputs helps."""
    spec, out = context.spec, preflight_first(context)
    rate, default, _ = _optimizer(spec)
    if rate > default:
        factor = 0.01 if rate > 10 * default else 0.1
        out.append(Suggestion(summary=f"learning rate {rate * factor:.3g}",
                              patch=patch_from(spec, _scale_learning_rate(factor))))
    return [*out, *_batch_norm(context)]


def more_epochs(spec: Spec) -> Suggestion:
    epochs = spec["fit"]["epochs"]
    return Suggestion(summary=f"train for {epochs * 2} epochs",
                      patch=patch_from(spec, lambda s: s["fit"].update(epochs=epochs * 2)))

