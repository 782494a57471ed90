"""Fixes for the training-phase findings, as merge patches of the spec.

The first suggestion is the one the auto-repair and "retry with the top
suggestion" use: when preflight found causes with fixes, the combined fix of
those causes comes first, since a stuck or saturated model is most often the
consequence of them.
"""

from typing import Any

from diagnosis.facts import keras_name
from diagnosis.patches import patch_from
from models.findings import Code, Suggestion

Spec = dict[str, Any]
# Keras's string names of optimizers → their classes, to add arguments to "adam".
OPTIMIZER_CLASSES = {
    "adam": "Adam", "adamw": "AdamW", "nadam": "Nadam", "adamax": "Adamax", "rmsprop": "RMSprop", "sgd": "SGD",
    "adagrad": "Adagrad", "adadelta": "Adadelta", "ftrl": "Ftrl", "lion": "Lion", "adafactor": "Adafactor", "lamb": "Lamb",
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
    spec["model"]["layers"] = [lyr for i, lyr in enumerate(layers) if not (lyr["type"] == "Dropout" and convs[0] < i < convs[-1] + 2)]


CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
EARLY_STOPPING = {"type": "EarlyStopping", "monitor": "val_loss", "patience": 3, "restore_best_weights": True}


def training_suggestions(code: Code, spec: Spec, preflight_fix: tuple[dict[str, Any], list[str]] | None) -> list[Suggestion]:
    out: list[Suggestion] = []
    if preflight_fix and preflight_fix[0] and code is not Code.overfitting:
        patch, applied = preflight_fix
        out.append(Suggestion(summary="fix the causes found before training: " + "; ".join(applied), patch=patch))
    has_layers = "layers" in spec["model"]
    rate = _learning_rate(spec)
    if code is Code.overfitting:
        if not any(c["type"] == "EarlyStopping" for c in spec["fit"].get("callbacks", [])):
            out.append(Suggestion(summary="stop at the best epoch (EarlyStopping, restore_best_weights)",
                                  patch=patch_from(spec, _add_callback(EARLY_STOPPING))))
        if has_layers:
            out.append(Suggestion(summary="Dropout(0.3) before the output layer", patch=patch_from(spec, _dropout_before_output)))
    elif code is Code.diverging:
        out.append(Suggestion(summary=f"learning rate {rate / 10:.3g} with gradient clipping",
                              patch=patch_from(spec, _scale_learning_rate(0.1, clipnorm=True))))
    elif code is Code.unstable:
        if spec["fit"]["batch_size"] < 32:
            out.append(Suggestion(summary="batch size 32", patch=patch_from(spec, lambda s: s["fit"].update(batch_size=32))))
        out.append(Suggestion(summary=f"learning rate {rate / 10:.3g}", patch=patch_from(spec, _scale_learning_rate(0.1))))
    elif code is Code.plateau:
        out.append(Suggestion(summary="ReduceLROnPlateau on the validation loss", patch=patch_from(
            spec, _add_callback({"type": "ReduceLROnPlateau", "monitor": "val_loss", "factor": 0.3, "patience": 2}))))
        out.append(Suggestion(summary=f"learning rate {rate / 10:.3g}", patch=patch_from(spec, _scale_learning_rate(0.1))))
    else:  # stuck_at_chance, saturated_outputs, vanishing_gradients
        if code is Code.stuck_at_chance and has_layers and _tiny_or_dropped(spec):
            out.append(Suggestion(summary="3x3 kernels with padding 'same' and no Dropout between the convolutions",
                                  patch=patch_from(spec, _open_up_conv_stack)))
        factor = 0.01 if code is Code.saturated_outputs and rate > 0.01 else 0.1
        out.append(Suggestion(summary=f"learning rate {rate * factor:.3g}", patch=patch_from(spec, _scale_learning_rate(factor))))
        if has_layers:
            out.append(Suggestion(summary="BatchNormalization after the first layer",
                                  patch=patch_from(spec, _batch_norm_after_first_weight_layer)))
    return [s for s in out if s.patch]


def more_epochs(spec: Spec) -> Suggestion:
    epochs = spec["fit"]["epochs"]
    return Suggestion(summary=f"train for {epochs * 2} epochs", patch=patch_from(spec, lambda s: s["fit"].update(epochs=epochs * 2)))

