"""Each preflight code on a spec that has the mistake, and a healthy twin that must not get it."""

from typing import Any

import numpy as np
import pytest

from datastore.builtin import load_builtin
from diagnosis.facts import data_facts
from diagnosis.patches import merge_patch
from diagnosis.preflight import run_preflight
from keras_bridge.validate import check_spec
from models.spec import JobSpec

RNG = np.random.default_rng(0)


def job(layers: list[dict], input_shape: list, loss: str, **parts: Any) -> dict[str, Any]:
    body = {"dataset": "ds_test", "model": {"input_shape": input_shape, "layers": layers},
            "compile": {"optimizer": "adam", "loss": loss, "metrics": []}, "fit": {"epochs": 5, "batch_size": 32}}
    for key, value in parts.items():
        body[key] = {**body.get(key, {}), **value}
    return JobSpec.model_validate(body).model_dump(mode="json")


def codes(spec: dict[str, Any], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    findings = run_preflight(spec, check_spec(JobSpec.model_validate(spec)), data_facts(x, y))
    return {f.code.value: f for f in findings}


def applied(spec: dict[str, Any], finding, index: int = 0) -> dict[str, Any]:
    """The spec after a suggestion: it must still be a valid spec that Keras builds."""
    fixed = merge_patch(spec, finding.suggestions[index].patch)
    check_spec(JobSpec.model_validate(fixed))
    return fixed


X64 = RNG.normal(size=(200, 64)).astype("float32")
Y3D = RNG.uniform(size=(200, 3)).astype("float32")
LABELS = np.arange(200) % 2
DENSE = [{"type": "Dense", "units": 16, "activation": "relu"}]


def test_output_shape_mismatch_one_unit_for_a_3d_target():
    bad = job([*DENSE, {"type": "Dense", "units": 1}], [64], "mse")
    found = codes(bad, X64, Y3D)
    finding = found["output_shape_mismatch"]
    assert finding.severity == "error" and finding.evidence["target_shape"] == [3]
    fixed = applied(bad, finding)
    assert "output_shape_mismatch" not in codes(fixed, X64, Y3D)


def test_output_shape_mismatch_sequence_output_against_one_target_per_sample():
    x = RNG.normal(size=(100, 10, 4)).astype("float32")
    bad = job([{"type": "LSTM", "units": 4, "return_sequences": True},
               {"type": "Dense", "units": 1, "activation": "sigmoid"}], [10, 4], "binary_crossentropy")
    assert codes(bad, x, LABELS[:100])["output_shape_mismatch"].severity == "error"
    healthy = job([{"type": "LSTM", "units": 4}, {"type": "Dense", "units": 1, "activation": "sigmoid"}], [10, 4],
                  "binary_crossentropy")
    assert codes(healthy, x, LABELS[:100]) == {}


@pytest.mark.parametrize(
    ("loss", "units", "activation", "one_hot", "y"),
    [
        ("categorical_crossentropy", 2, "softmax", False, LABELS),  # integer labels, one-hot loss
        ("sparse_categorical_crossentropy", 2, "softmax", True, LABELS),  # one-hot labels, sparse loss
        ("binary_crossentropy", 1, "softmax", False, LABELS),  # softmax on one unit (story 5)
    ],
)
def test_loss_target_mismatch(loss, units, activation, one_hot, y):
    bad = job([*DENSE, {"type": "Dense", "units": units, "activation": activation}], [64], loss,
              data={"one_hot": one_hot})
    finding = codes(bad, X64, y)["loss_target_mismatch"]
    assert finding.severity == "error"
    assert codes(applied(bad, finding), X64, y) == {}


def test_healthy_classifiers_get_nothing():
    sparse = job([*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}], [64],
                 "sparse_categorical_crossentropy", compile={"metrics": ["accuracy"]})
    onehot = job([*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}], [64], "categorical_crossentropy",
                 data={"one_hot": True})
    binary = job([*DENSE, {"type": "Dense", "units": 1, "activation": "sigmoid"}], [64], "binary_crossentropy")
    for spec in (sparse, onehot, binary):
        assert codes(spec, X64, LABELS) == {}


def test_metric_not_meaningful_and_output_activation_range():
    y = RNG.normal(loc=5, size=(200, 3)).astype("float32")  # targets far outside [0, 1]
    bad = job([*DENSE, {"type": "Dense", "units": 3, "activation": "sigmoid"}], [64], "mse",
              compile={"metrics": ["accuracy", "mse"]})
    found = codes(bad, X64, y)
    assert set(found) == {"metric_not_meaningful", "output_activation_range"}
    assert applied(bad, found["metric_not_meaningful"])["compile"]["metrics"] == ["mse", "mae"]
    assert applied(bad, found["output_activation_range"])["model"]["layers"][-1]["activation"] == "linear"
    # Story 2's targets were MinMax-scaled: a sigmoid can reach them.
    scaled = job([*DENSE, {"type": "Dense", "units": 3, "activation": "sigmoid"}], [64], "mse",
                 data={"scale_y": "minmax"})
    assert codes(scaled, X64, y) == {}


def test_unscaled_inputs_raw_pixels_and_mixed_scales():
    pixels = RNG.integers(0, 256, size=(200, 8, 8, 1)).astype("float32")
    model = [{"type": "Flatten"}, {"type": "Dense", "units": 2, "activation": "softmax"}]
    raw = job(model, [8, 8, 1], "sparse_categorical_crossentropy")
    finding = codes(raw, pixels, LABELS)["unscaled_inputs"]
    assert finding.suggestions[0].patch == {"data": {"scale_x": "rescale"}}
    assert codes(applied(raw, finding), pixels, LABELS) == {}
    mixed = X64 * np.r_[np.ones(32), np.full(32, 1000.0)].astype("float32")
    assert "unscaled_inputs" in codes(job([*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}], [64],
                                          "sparse_categorical_crossentropy"), mixed, LABELS)


def test_saturating_activation_in_a_deep_stack_not_in_a_shallow_one():
    deep = job([{"type": "Dense", "units": 16, "activation": "sigmoid"}] * 3
               + [{"type": "Dense", "units": 2, "activation": "softmax"}], [64], "sparse_categorical_crossentropy")
    finding = codes(deep, X64, LABELS)["saturating_activation"]
    assert [lyr["index"] for lyr in finding.evidence["layers"]] == [0, 1, 2]
    assert applied(deep, finding)["model"]["layers"][0] == {"type": "Dense", "units": 16, "activation": "relu",
                                                            "kernel_initializer": "he_normal"}
    shallow = job([{"type": "Dense", "units": 16, "activation": "tanh"},
                   {"type": "Dense", "units": 2, "activation": "softmax"}], [64], "sparse_categorical_crossentropy")
    assert codes(shallow, X64, LABELS) == {}


def test_oversized_window_story_3_and_small_kernels_pass():
    x = RNG.normal(size=(50, 1040, 1)).astype("float32")
    y = RNG.normal(size=(50,)).astype("float32")
    big = job([{"type": "Conv1D", "filters": 4, "kernel_size": 100, "padding": "same"},
               {"type": "MaxPooling1D", "pool_size": 70, "strides": 1, "padding": "same"},
               {"type": "Flatten"}, {"type": "Dense", "units": 1}], [1040, 1], "mse")
    finding = codes(big, x, y)["oversized_window"]
    assert [lyr["index"] for lyr in finding.evidence["layers"]] == [0, 1]
    small = applied(big, finding)
    assert codes(small, x, y) == {}


def test_tiny_batch_and_extreme_learning_rate():
    bad = job([*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}], [64], "sparse_categorical_crossentropy",
              compile={"optimizer": {"type": "RMSprop", "learning_rate": 0.1}}, fit={"batch_size": 1})
    found = codes(bad, X64, LABELS)
    assert set(found) == {"tiny_batch", "learning_rate_extreme"}
    assert applied(bad, found["learning_rate_extreme"])["compile"]["optimizer"]["learning_rate"] == 0.001
    ok = job([*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}], [64], "sparse_categorical_crossentropy",
             compile={"optimizer": {"type": "Nadam", "learning_rate": 0.0002}}, fit={"batch_size": 32})
    assert codes(ok, X64, LABELS) == {}


def test_masking_after_convolutions_story_1():
    x = RNG.normal(size=(60, 30, 7)).astype("float32")
    model = [{"type": "Conv1D", "filters": 8, "kernel_size": 3, "activation": "relu"},
             {"type": "MaxPooling1D", "pool_size": 3}, {"type": "Masking", "mask_value": 0.0},
             {"type": "LSTM", "units": 4}, {"type": "Dense", "units": 2, "activation": "softmax"}]
    bad = job(model, [None, 7], "sparse_categorical_crossentropy")
    finding = codes(bad, x, LABELS[:60])["masking_misplaced"]
    assert finding.evidence["masking_index"] == 2
    assert codes(applied(bad, finding), x, LABELS[:60]) == {}
    first = job([model[2], {"type": "LSTM", "units": 4}, model[-1]], [None, 7], "sparse_categorical_crossentropy")
    assert codes(first, x, LABELS[:60]) == {}


def test_validation_split_skew_on_sorted_labels_only_without_shuffle():
    sorted_labels = np.repeat([0, 1], 100)
    model = [*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}]
    unshuffled = job(model, [64], "sparse_categorical_crossentropy", data={"shuffle": False})
    finding = codes(unshuffled, X64, sorted_labels)["validation_split_skew"]
    assert finding.evidence["validation_distribution"] == {"0": 0.0, "1": 1.0}
    assert finding.suggestions[0].patch == {"data": {"shuffle": True}}
    assert codes(job(model, [64], "sparse_categorical_crossentropy"), X64, sorted_labels) == {}
    assert codes(unshuffled, X64, LABELS) == {}  # interleaved labels: the last fifth is representative


def test_class_imbalance_warns_when_accuracy_would_mislead():
    y = (np.arange(200) < 190).astype("int64")
    model = [*DENSE, {"type": "Dense", "units": 1, "activation": "sigmoid"}]
    found = codes(job(model, [64], "binary_crossentropy", compile={"metrics": ["accuracy"]}), X64, y)
    assert found["class_imbalance"].severity == "warning"
    assert found["class_imbalance"].evidence["majority_share"] == 0.95
    assert codes(job(model, [64], "binary_crossentropy"), X64, y)["class_imbalance"].severity == "info"
    assert codes(job(model, [64], "binary_crossentropy", compile={"metrics": ["accuracy"]}), X64, LABELS) == {}


def test_unscaled_inputs_ignores_a_few_near_constant_features_but_not_one_dominant_feature():
    pixels = RNG.uniform(size=(200, 64)).astype("float32")  # already in [0, 1]
    pixels[:, :4] = 0.0
    pixels[0, :4] = 0.001  # corner pixels that one image barely touches: std ~7e-5, max/min ratio ~4000
    model = job([*DENSE, {"type": "Dense", "units": 2, "activation": "softmax"}], [64],
                "sparse_categorical_crossentropy")
    assert codes(model, pixels, LABELS) == {}
    dominant = X64.copy()
    dominant[:, 5] *= 1000.0  # one column in other units: it swamps the first layer's sums
    finding = codes(model, dominant, LABELS)["unscaled_inputs"]
    assert finding.evidence["feature_std_ratio"] > 300
    assert finding.suggestions[0].patch == {"data": {"scale_x": "standardize"}}


def test_unscaled_inputs_trusts_a_model_that_scales_its_own_inputs():
    pixels = RNG.integers(0, 256, size=(200, 8, 8, 1)).astype("float32")
    head = [{"type": "Flatten"}, {"type": "Dense", "units": 2, "activation": "softmax"}]
    rescaled = job([{"type": "Rescaling", "scale": 1 / 255}, *head], [8, 8, 1], "sparse_categorical_crossentropy")
    assert "unscaled_inputs" not in codes(rescaled, pixels, LABELS)
    late = job([*head[:1], {"type": "Dense", "units": 8}, {"type": "BatchNormalization"}, head[1]], [8, 8, 1],
               "sparse_categorical_crossentropy")  # normalizes after the first weights: too late for the inputs
    assert "unscaled_inputs" in codes(late, pixels, LABELS)


def test_flattened_digit_pixels_in_0_1_are_scaled_despite_their_nearly_blank_border():
    # Real pixels: the border of the 8x8 digits is almost never inked (spreads down to 0.0015
    # against 0.4 in the middle): the old max/min rule called this "feature scales differ 277-fold".
    digits = load_builtin("builtin:digits")
    pixels, labels = digits["x"].reshape(len(digits["x"]), 64) / 16.0, digits["y"]
    model = job([*DENSE, {"type": "Dense", "units": 10, "activation": "softmax"}], [64],
                "sparse_categorical_crossentropy")
    assert "unscaled_inputs" not in codes(model, pixels, labels)
    assert "unscaled_inputs" in codes(model, pixels * 255.0, labels)  # the same pixels raw: still found
