"""Data problems visible before training: scale, split skew, imbalance."""

import numpy as np

from diagnosis.facts import DataFacts, SpecView
from diagnosis.patches import patch_from
from models.findings import Code, Finding, Suggestion
from models.spec import split_sizes

PIXEL_LIKE = 100.0  # raw 0-255 pixels and similar counts
SCALE_RATIO = 100.0  # feature standard deviations this far apart
REFERENCE_QUANTILE = 0.25  # the feature scale that the largest is compared with (see feature_scale_ratio)
# Layers that scale the inputs inside the model (Keras's own recipe for raw pixels: Rescaling(1/255)).
SCALING_LAYERS = {"Rescaling", "Normalization", "BatchNormalization"}  # per feature, or all by one factor
SKEW_DISTANCE = 0.3  # total variation distance between label distributions
IMBALANCE_SHARE = 0.8


def feature_scale_ratio(feature_std: np.ndarray) -> float:
    """How many times the largest feature scale (standard deviation) exceeds the typical small one.

    The reference is the lower quartile of the scales of the features that vary at all, not the
    smallest. One feature far larger than the rest still counts in full (it dominates the first
    layer's sums and gradients), but a minority of near-constant features does not make the data
    "unscaled": border pixels that few images touch, or rare indicator columns, carry almost no
    signal, so their tiny spread slows nothing down, and standardizing them would only blow their
    noise up (MNIST-like pixels in [0, 1] gave "scale ratio 818" from a few corner pixels). Scales
    that truly differ hold for a substantial share of the features (half of them in pounds, half in
    grams), which the quartile sees. With four features or fewer it is the smallest scale.
    """
    std = feature_std[np.isfinite(feature_std) & (feature_std > 0)]
    if std.size == 0:
        return 1.0
    return float(std.max() / np.quantile(std, REFERENCE_QUANTILE, method="lower"))


def _scaled_by_the_model(view: SpecView) -> bool:
    """A scaling layer before the first layer with weights: the model scales its own inputs."""
    for layer in view.summary["layers"]:
        if layer["type"] in SCALING_LAYERS:
            return True
        if layer.get("params"):
            return False
    return False


def unscaled_inputs(view: SpecView, facts: DataFacts) -> list[Finding]:
    scale = facts.x_scale
    if view.spec["data"].get("scale_x") or scale is None or _scaled_by_the_model(view):
        return []
    ratio = feature_scale_ratio(scale.feature_std)
    if scale.abs_max < PIXEL_LIKE and ratio < SCALE_RATIO:
        return []
    pixel_like = scale.min >= 0 and scale.abs_max >= PIXEL_LIKE and ratio < SCALE_RATIO
    reason = (f"inputs reach {scale.abs_max:.4g} (raw pixels or counts)" if scale.abs_max >= PIXEL_LIKE
              else f"feature scales differ {ratio:.3g}-fold")
    first = "rescale" if pixel_like else "standardize"
    second = "standardize" if pixel_like else "minmax"
    return [Finding(
        code=Code.unscaled_inputs, severity="warning", phase="preflight",
        message=f"The inputs are far from unit scale: {reason}. Large inputs saturate activations and make the "
                "first layers learn far slower than the rest.",
        evidence={"x_abs_max": scale.abs_max, "feature_std_ratio": ratio},
        suggestions=[Suggestion(summary=f"scale_x: {m}",
                                patch=patch_from(view.spec, lambda s, m=m: s["data"].update(scale_x=m)))
                     for m in (first, second)])]


def _split_bounds(view: SpecView, n: int) -> tuple[int, int]:
    """Where the unshuffled validation part starts and ends: as the worker splits (``models.spec.split_sizes``)."""
    data = view.spec["data"]
    n_train, n_val, _ = split_sizes(n, data["validation_split"], data["test_split"])
    return n_train, n_train + n_val


def _distribution(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    counts = np.array([(labels == c).sum() for c in classes], dtype=np.float64)
    return counts / max(counts.sum(), 1)


def validation_split_skew(view: SpecView, facts: DataFacts) -> list[Finding]:
    if view.spec["data"].get("shuffle", True) or facts.y is None:
        return []
    train_end, val_end = _split_bounds(view, facts.samples)
    if val_end <= train_end or train_end <= 0:
        return []
    labels = facts.labels
    if labels is not None:
        classes = np.unique(labels)
        train, val = _distribution(labels[:train_end], classes), _distribution(labels[train_end:val_end], classes)
        distance = float(0.5 * np.abs(train - val).sum())
        if distance < SKEW_DISTANCE:
            return []
        names = list(map(str, classes.tolist()))
        evidence = {"train_distribution": dict(zip(names, train.round(3).tolist(), strict=True)),
                    "validation_distribution": dict(zip(names, val.round(3).tolist(), strict=True)),
                    "total_variation": round(distance, 3)}
    else:
        y = np.asarray(facts.y, dtype=np.float64).reshape(facts.samples, -1)
        shift = np.abs(y[train_end:val_end].mean(0) - y[:train_end].mean(0)) / (y[:train_end].std(0) + 1e-12)
        if float(shift.max()) < 1.0:
            return []
        evidence = {"mean_shift_in_train_std": round(float(shift.max()), 3)}
    return [Finding(
        code=Code.validation_split_skew, severity="warning", phase="preflight",
        message="With shuffle off, the validation part is the last stretch of the stored data and its targets are "
                "distributed very differently from the training part "
                "(sorted data gives a validation set of one class).",
        evidence=evidence,
        suggestions=[Suggestion(summary="shuffle before splitting",
                                patch=patch_from(view.spec, lambda s: s["data"].update(shuffle=True)))])]


def class_imbalance(view: SpecView, facts: DataFacts) -> list[Finding]:
    counts = facts.label_counts
    if view.is_regression or not counts or len(counts) < 2:
        return []
    total = sum(counts.values())
    majority_label, majority = max(counts.items(), key=lambda kv: kv[1])
    share = majority / total
    if share < IMBALANCE_SHARE and majority / max(min(counts.values()), 1) < 10:
        return []
    uses_accuracy = any("accuracy" in m or m == "acc" for m in view.metrics)
    suggestions = []
    if len(counts) == 2:
        suggestions.append(Suggestion(
            summary="watch AUC, precision and recall",
            patch=patch_from(view.spec, lambda s: s["compile"].update(metrics=[
                *s["compile"].get("metrics", []), {"type": "AUC"}, {"type": "Precision"}, {"type": "Recall"}]))))
    return [Finding(
        code=Code.class_imbalance, severity="warning" if uses_accuracy else "info", phase="preflight",
        message=f"Class {majority_label} is {share:.0%} of the samples: always predicting it already scores "
                f"{share:.0%} accuracy, so accuracy will mislead.",
        evidence={"label_counts": {str(k): v for k, v in counts.items()}, "majority_share": round(share, 4)},
        suggestions=suggestions)]
