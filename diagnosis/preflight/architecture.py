"""Layer choices that keep a model from learning: saturating stacks, huge windows, a lost mask."""

from typing import Any

from diagnosis.facts import LayerView, SpecView
from diagnosis.patches import patch_from
from models.findings import Code, Finding, Suggestion

WEIGHT_LAYERS = ("Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
                 "DepthwiseConv2D", "Conv1DTranspose", "Conv2DTranspose")
RECURRENT = ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D")
SATURATING = {"sigmoid", "tanh", "hard_sigmoid", "softsign"}
# Layers through which a time-step mask cannot survive: they drop or reshape the time axis.
MASK_BREAKERS = ("Conv", "Pooling", "Flatten", "Reshape", "Cropping", "UpSampling", "ZeroPadding", "Dense")
LARGE_WINDOW = 16


def saturating_activation(view: SpecView) -> list[Finding]:
    if not view.has_layers:
        return []
    weighted = [lyr for lyr in view.layers if lyr.type in WEIGHT_LAYERS or lyr.type in RECURRENT]
    hidden = [lyr for lyr in weighted[:-1] if lyr.type in WEIGHT_LAYERS and lyr.activation in SATURATING]
    if len(weighted) < 3 or not hidden:
        return []
    indices = [lyr.index for lyr in hidden]

    def fix(spec: dict[str, Any]) -> None:
        for i in indices:
            spec["model"]["layers"][i].update(activation="relu", kernel_initializer="he_normal")

    return [Finding(
        code=Code.saturating_activation, severity="warning", phase="preflight",
        message=f"Hidden layers {indices} use {sorted({lyr.activation for lyr in hidden})} in a stack of "
                f"{len(weighted)} weight layers: these saturate, their gradients vanish, "
                "and deep stacks stop learning.",
        evidence={"layers": [{"index": lyr.index, "type": lyr.type, "activation": lyr.activation} for lyr in hidden],
                  "depth": len(weighted)},
        suggestions=[Suggestion(summary="relu with he_normal initialization in those layers",
                                patch=patch_from(view.spec, fix))])]


def _window(value: Any) -> list[int]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return value
    return []


def _oversized(layer: LayerView) -> dict[str, Any] | None:
    key = "kernel_size" if "Conv" in layer.type else "pool_size" if "Pooling" in layer.type else None
    if key is None or "Global" in layer.type:
        return None
    window = _window(layer.args.get(key, 2 if key == "pool_size" else None))
    lengths = [d for d in (layer.input_shape or [None])[1:-1]]
    for axis, size in enumerate(window):
        length = lengths[axis] if axis < len(lengths) else None
        if size >= LARGE_WINDOW or (length and size > 3 and size >= length / 2):
            return {"index": layer.index, "type": layer.type, key: size, "input_length": length}
    return None


def oversized_window(view: SpecView) -> list[Finding]:
    if not view.has_layers:
        return []
    found = [o for lyr in view.layers if (o := _oversized(lyr))]
    if not found:
        return []

    def fix(spec: dict[str, Any]) -> None:
        for item in found:
            layer = spec["model"]["layers"][item["index"]]
            if "kernel_size" in item:
                layer["kernel_size"] = 3
            else:
                layer["pool_size"] = 2
                layer.pop("strides", None)

    return [Finding(
        code=Code.oversized_window, severity="warning", phase="preflight",
        message="Kernel or pool sizes are large against the input: each output mixes a wide stretch of the signal, "
                "so local patterns are averaged away and training gets erratic. "
                "Small windows (2-4) stacked learn better.",
        evidence={"layers": found},
        suggestions=[Suggestion(summary="kernels of 3 and pools of 2", patch=patch_from(view.spec, fix))])]


def masking_misplaced(view: SpecView) -> list[Finding]:
    if not view.has_layers:
        return []
    findings = []
    for layer in view.layers:
        if layer.type != "Masking":
            continue
        breakers = [lyr for lyr in view.layers[: layer.index] if any(b in lyr.type for b in MASK_BREAKERS)]
        if not breakers:
            continue
        index = layer.index
        findings.append(Finding(
            code=Code.masking_misplaced, severity="warning", phase="preflight",
            message=f"Masking (layer {index}) comes after {[f'{lyr.index}:{lyr.type}' for lyr in breakers]}, "
                    "which change the time axis and mix padded steps into real ones, so it masks nothing that "
                    "matches the padding.",
            evidence={"masking_index": index, "after": [{"index": lyr.index, "type": lyr.type} for lyr in breakers]},
            suggestions=[Suggestion(summary=f"remove the Masking layer {index}",
                                    patch=patch_from(view.spec, lambda s: s["model"]["layers"].pop(index)))]))
    return findings
