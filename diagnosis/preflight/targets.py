"""Does the model's output, its loss and its metrics fit the targets?"""

from typing import Any

from diagnosis.facts import CLASSIFICATION_LOSSES, DataFacts, SpecView
from diagnosis.patches import patch_from
from models.findings import Code, Finding, Suggestion

ACCURACY_METRICS = {"accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"}


def _set_last_layer(**args: Any):
    def fix(spec: dict[str, Any]) -> None:
        spec["model"]["layers"][-1].update(args)
    return fix


def _set(path: tuple[str, ...], value: Any):
    def fix(spec: dict[str, Any]) -> None:
        target = spec
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    return fix


def _target_shape(view: SpecView, facts: DataFacts) -> tuple[int, ...]:
    if view.spec["data"].get("one_hot") and facts.labels is not None:
        return (int(facts.y_max) + 1,)
    return facts.y_sample_shape


def _mismatch(spec: dict[str, Any], message: str, evidence: dict[str, Any], suggestions: list[Suggestion]) -> Finding:
    return Finding(code=Code.output_shape_mismatch, severity="error", phase="preflight", message=message,
                   evidence=evidence, suggestions=suggestions)


def output_shape(view: SpecView, facts: DataFacts) -> list[Finding]:
    out = view.output_shape
    target = list(_target_shape(view, facts))
    evidence = {"output_shape": out, "target_shape": target, "loss": view.loss}
    last_is_dense = view.has_layers and view.layers and view.layers[-1].type == "Dense"
    if view.loss == "categorical_crossentropy" and facts.labels is not None and target == []:
        return []  # integer labels under a one-hot loss: loss_target_mismatch says it better
    if len(out) > max(len(target), 1):
        suggestions = []
        if view.has_layers:
            rnn = next((lyr for lyr in reversed(view.layers) if lyr.args.get("return_sequences")), None)
            if rnn is not None:
                idx = rnn.index
                suggestions.append(Suggestion(
                    summary=f"set return_sequences=false on layer {idx} ({rnn.type})",
                    patch=patch_from(view.spec, lambda s: s["model"]["layers"][idx].update(return_sequences=False))))
            suggestions.append(Suggestion(
                summary="add Flatten before the output layer",
                patch=patch_from(view.spec, lambda s: s["model"]["layers"].insert(-1, {"type": "Flatten"}))))
        return [_mismatch(view.spec,
                          f"The model outputs a sequence of shape {out} per sample but there is one target of "
                          f"shape {target} per sample; Keras 3 silently broadcasts the loss over the extra axes.",
                          evidence, suggestions)]
    if view.loss == "sparse_categorical_crossentropy":
        classes = int(facts.y_max) + 1
        if out and out[-1] is not None and out[-1] < classes:
            fix = [Suggestion(summary=f"make the output layer {classes} units",
                              patch=patch_from(view.spec, _set_last_layer(units=classes)))] if last_is_dense else []
            return [_mismatch(view.spec, f"The labels go up to {classes - 1} but the model outputs only {out[-1]} "
                              "class scores per sample.", {**evidence, "classes": classes}, fix)]
        return []
    if view.loss == "binary_crossentropy" and facts.labels is not None and target in ([], [1]):
        return [] if out in ([], [1]) else [_mismatch(
            view.spec, f"Binary cross-entropy needs one output per sample, the model gives {out}.", evidence,
            [Suggestion(summary="one sigmoid output unit",
                        patch=patch_from(view.spec, _set_last_layer(units=1, activation="sigmoid")))]
            if last_is_dense else [])]
    if out == target or (out == [1] and target == []) or (out == [] and target == [1]):
        return []
    fix = []
    if last_is_dense and len(target) == 1:
        fix = [Suggestion(summary=f"make the output layer {target[0]} units",
                          patch=patch_from(view.spec, _set_last_layer(units=target[0])))]
    elif last_is_dense and target == [] and out != [1]:
        fix = [Suggestion(summary="make the output layer 1 unit",
                          patch=patch_from(view.spec, _set_last_layer(units=1)))]
    return [_mismatch(view.spec, f"The model outputs shape {out} per sample but the targets have shape {target}.",
                      evidence, fix)]


def loss_target(view: SpecView, facts: DataFacts) -> list[Finding]:
    findings = []
    one_hot = bool(view.spec["data"].get("one_hot"))
    labels = facts.labels

    def finding(message: str, evidence: dict[str, Any], suggestions: list[Suggestion]) -> Finding:
        return Finding(code=Code.loss_target_mismatch, severity="error", phase="preflight", message=message,
                       evidence={"loss": view.loss, **evidence}, suggestions=suggestions)

    if view.loss == "categorical_crossentropy" and labels is not None and not one_hot and not facts.one_hot_stored:
        findings.append(finding(
            "Categorical cross-entropy expects one-hot targets but y holds integer class labels.",
            {"target_shape": list(facts.y_sample_shape)},
            [Suggestion(summary="use sparse_categorical_crossentropy",
                        patch=patch_from(view.spec, _set(("compile", "loss"), "sparse_categorical_crossentropy"))),
             Suggestion(summary="one-hot encode the labels",
                        patch=patch_from(view.spec, _set(("data", "one_hot"), True)))]))
    if view.loss == "sparse_categorical_crossentropy" and (one_hot or facts.one_hot_stored):
        findings.append(finding(
            "Sparse categorical cross-entropy expects integer labels but the targets are one-hot.",
            {"one_hot": one_hot, "target_shape": list(facts.y_sample_shape)},
            [Suggestion(summary="use categorical_crossentropy",
                        patch=patch_from(view.spec, _set(("compile", "loss"), "categorical_crossentropy")))]))
    if view.output_activation == "softmax" and view.output_shape in ([1], []):
        findings.append(finding(
            "A softmax over one unit always outputs 1.0, so nothing can be learned (Keras 3 trains it with only a "
            "warning and the accuracy stays frozen).",
            {"output_shape": view.output_shape, "output_activation": "softmax"},
            [Suggestion(summary="use a sigmoid output with binary_crossentropy",
                        patch=patch_from(view.spec, _set_last_layer(activation="sigmoid"),
                                         _set(("compile", "loss"), "binary_crossentropy")))]
            if view.layers and view.layers[-1].type == "Dense" else []))
    if (view.loss == "binary_crossentropy" and labels is not None and int(facts.y_max) > 1
            and not facts.one_hot_stored and not one_hot):
        classes = int(facts.y_max) + 1
        findings.append(finding(
            f"Binary cross-entropy needs 0/1 targets but y has {classes} classes.",
            {"classes": classes},
            [Suggestion(summary=f"softmax over {classes} units with sparse_categorical_crossentropy",
                        patch=patch_from(view.spec, _set_last_layer(units=classes, activation="softmax"),
                                         _set(("compile", "loss"), "sparse_categorical_crossentropy")))]
            if view.layers and view.layers[-1].type == "Dense" else []))
    if view.loss in CLASSIFICATION_LOSSES and not facts.y_integer:
        findings.append(finding(
            "A classification loss is used but y holds continuous values.",
            {"y_min": facts.y_min, "y_max": facts.y_max},
            [Suggestion(summary="use mean_squared_error",
                        patch=patch_from(view.spec, _set(("compile", "loss"), "mse")))]))
    return findings


def metric_meaning(view: SpecView, facts: DataFacts) -> list[Finding]:
    accuracy = [m for m in view.metrics if m in ACCURACY_METRICS]
    if not view.is_regression or not accuracy:
        return []

    def fix(spec: dict[str, Any]) -> None:
        kept = [m for m in spec["compile"].get("metrics", [])
                if not (isinstance(m, str) and m.lower() in ACCURACY_METRICS)
                and not (isinstance(m, dict)
                         and m["type"].lower() in {"accuracy", "binaryaccuracy", "categoricalaccuracy"})]
        spec["compile"]["metrics"] = kept if any(m in ("mae", "mean_absolute_error") for m in kept) else [*kept, "mae"]

    return [Finding(
        code=Code.metric_not_meaningful, severity="warning", phase="preflight",
        message=f"Accuracy counts exact matches; with the regression loss {view.loss} it says nothing about how close "
                "the predictions are. Watch mae or mse instead.",
        evidence={"loss": view.loss, "metrics": accuracy},
        suggestions=[Suggestion(summary="replace accuracy with mae", patch=patch_from(view.spec, fix))])]


def _target_range(view: SpecView, facts: DataFacts) -> tuple[float, float]:
    scale = view.spec["data"].get("scale_y")
    if scale == "minmax":
        return 0.0, 1.0
    if scale == "standardize":
        return (facts.y_min - facts.y_mean) / (facts.y_std or 1), (facts.y_max - facts.y_mean) / (facts.y_std or 1)
    if scale == "rescale":
        bound = max(abs(facts.y_min), abs(facts.y_max)) or 1
        return facts.y_min / bound, facts.y_max / bound
    return facts.y_min, facts.y_max


RANGES = {"sigmoid": (0.0, 1.0), "relu": (0.0, float("inf")), "tanh": (-1.0, 1.0), "softplus": (0.0, float("inf")),
          "hard_sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "exponential": (0.0, float("inf"))}


def activation_range(view: SpecView, facts: DataFacts) -> list[Finding]:
    activation = view.output_activation
    if not view.is_regression or activation not in RANGES:
        return []
    low, high = RANGES[activation]
    y_low, y_high = _target_range(view, facts)
    if activation != "softmax" and low <= y_low and y_high <= high:
        return []
    return [Finding(
        code=Code.output_activation_range, severity="warning", phase="preflight",
        message=f"The output activation {activation} only produces values in [{low}, {high}] but the targets span "
                f"[{y_low:.4g}, {y_high:.4g}]"
                + (" (and softmax outputs sum to 1)." if activation == "softmax" else "."),
        evidence={"activation": activation, "activation_range": [low, high if high != float('inf') else None],
                  "target_min": y_low, "target_max": y_high},
        suggestions=[Suggestion(summary="use a linear output",
                                patch=patch_from(view.spec, _set_last_layer(activation="linear")))]
        if view.layers and view.layers[-1].type == "Dense" else [])]
