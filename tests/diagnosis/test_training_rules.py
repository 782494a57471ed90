"""The training-phase rules on curves shaped like the symptoms, and on healthy curves."""

import math

import pytest

from diagnosis.curves import Epoch, Task
from diagnosis.registry import RESOLVERS, RULES
from diagnosis.verdict import final_verdict
from models.findings import Code

LN8 = math.log(8)
CLASSIFIER = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=LN8, majority_rate=0.125,
                  classes=8)
REGRESSOR = Task(classification=False, loss="mean_squared_error", target_variance=1.0)


def run(losses, vals=None, accuracy=None, pinned=None, grads=None):
    history = []
    for i, loss in enumerate(losses):
        logs = {"loss": loss}
        if vals is not None:
            logs["val_loss"] = vals[i]
        if accuracy is not None:
            logs["accuracy"] = accuracy[i]
        history.append(Epoch(i + 1, logs, pinned_fraction=pinned[i] if pinned else None,
                             gradient_norms=grads[i] if grads else None))
    return history


def first_epoch(code: Code, history, task) -> int | None:
    for end in range(1, len(history) + 1):
        if RULES[code](history[:end], task) is not None:
            return end
    return None


HEALTHY = run([2.0, 1.5, 1.1, 0.8, 0.6, 0.45, 0.35, 0.3, 0.27, 0.25],
              [2.0, 1.6, 1.2, 0.9, 0.7, 0.6, 0.55, 0.52, 0.5, 0.49],
              accuracy=[0.3, 0.5, 0.65, 0.75, 0.82, 0.87, 0.9, 0.92, 0.93, 0.94],
              pinned=[0.0, 0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.4, 0.45],
              grads=[[0.3, 0.2, 0.4]] * 10)


@pytest.mark.parametrize("code", list(RULES))
def test_a_healthy_run_raises_nothing(code):
    assert first_epoch(code, HEALTHY, CLASSIFIER) is None


def test_stuck_at_chance_story_4_and_not_a_slow_starter():
    stuck = run([2.0973, 2.0894, 2.0831, 2.0811, 2.0814], [2.08] * 5, accuracy=[0.12, 0.12, 0.11, 0.12, 0.12])
    assert first_epoch(Code.stuck_at_chance, stuck, CLASSIFIER) == 4
    slow = run([2.138, 2.084, 2.074, 2.064, 2.042, 1.9], [2.09] * 6, accuracy=[0.12, 0.13, 0.14, 0.14, 0.16, 0.2])
    assert first_epoch(Code.stuck_at_chance, slow, CLASSIFIER) is None


def test_stuck_at_chance_uses_the_label_entropy_not_ln_k():
    imbalanced = Task(classification=True, loss="binary_crossentropy", chance_loss=0.325, majority_rate=0.9, classes=2)
    at_entropy = run([0.33, 0.326, 0.325, 0.325], accuracy=[0.9] * 4)
    assert first_epoch(Code.stuck_at_chance, at_entropy, imbalanced) == 4
    ln2 = Task(**{**imbalanced.__dict__, "chance_loss": math.log(2)})
    assert first_epoch(Code.stuck_at_chance, at_entropy, ln2) is None  # ln 2 would miss it


def test_saturated_outputs_keras_3_loss_in_the_thousands():
    saturated = run([1526.0, 900.0], [9.1, 6.4], pinned=[1.0, 0.98])
    assert first_epoch(Code.saturated_outputs, saturated, CLASSIFIER) == 1
    confident_and_right = run([0.05, 0.03], [0.06, 0.05], pinned=[0.99, 1.0])
    assert first_epoch(Code.saturated_outputs, confident_and_right, CLASSIFIER) is None


def test_diverging_on_nan_explosion_and_joint_rise():
    assert first_epoch(Code.diverging, run([1.0, float("nan")], [1.0, 1.0]), CLASSIFIER) == 2
    assert first_epoch(Code.diverging, run([3e23], [6e11]), CLASSIFIER) == 1
    rising = run([1.0, 0.8, 0.9, 1.1, 1.4, 1.9], [1.0, 0.9, 1.0, 1.2, 1.5, 2.0])
    assert first_epoch(Code.diverging, rising, REGRESSOR) == 5  # 3 rising epochs, above the start


def test_overfitting_names_the_best_epoch_and_ignores_one_noisy_epoch():
    vals = [1.93, 1.2, 0.9, 0.8, 0.85, 0.95, 1.1, 1.3]
    overfit = run([2.0, 1.2, 0.8, 0.5, 0.35, 0.25, 0.15, 0.1], vals)
    assert first_epoch(Code.overfitting, overfit, CLASSIFIER) == 8
    assert RULES[Code.overfitting](overfit, CLASSIFIER)[2]["best_epoch"] == 4
    noisy = run([2.0, 1.2, 0.8, 0.5, 0.35, 0.25, 0.15], [1.9, 1.2, 0.9, 0.8, 1.0, 0.82, 0.79])
    assert first_epoch(Code.overfitting, noisy, CLASSIFIER) is None
    handled = Task(**{**CLASSIFIER.__dict__, "early_stopping_restores_best": True})
    assert RULES[Code.overfitting](overfit, handled)[0] == "info"


def test_plateau_for_regression_and_classification():
    flat = run([0.9, 0.62, 0.6, 0.6, 0.6, 0.6, 0.6], [0.9, 0.62, 0.61, 0.61, 0.61, 0.61, 0.61])
    assert first_epoch(Code.plateau, flat, REGRESSOR) == 6
    converged = run([0.9, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05], [0.9, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert first_epoch(Code.plateau, converged, REGRESSOR) is None


def test_unstable_bouncing_but_not_a_noisy_descent():
    story3 = run([0.27, 0.02, 0.013, 0.014, 0.025, 0.008, 88.0], [0.0295, 0.0063, 0.0892, 0.0093, 0.0015, 0.0042, 2.77])
    assert first_epoch(Code.unstable, story3, REGRESSOR) == 6
    descent = run([1.2, 0.85, 0.85, 0.5, 0.39, 0.42, 0.23], [1.19, 0.85, 0.85, 0.50, 0.394, 0.424, 0.227])
    assert first_epoch(Code.unstable, descent, REGRESSOR) is None


def test_vanishing_gradients_from_the_probe_norms():
    deep = run([2.3, 2.3, 2.3], grads=[[8e-6, 1e-4, 0.5]] * 3)
    assert first_epoch(Code.vanishing_gradients, deep, CLASSIFIER) == 2


def test_a_resolved_finding_no_longer_drives_the_verdict():
    took_off = run([2.09, 2.085, 2.08, 2.079, 1.7, 1.1, 0.5], [2.08, 2.08, 2.08, 2.07, 1.6, 1.0, 0.45],
                   accuracy=[0.12, 0.12, 0.12, 0.12, 0.3, 0.6, 0.85])
    assert RESOLVERS[Code.stuck_at_chance](took_off, CLASSIFIER)
    resolved = {"code": "stuck_at_chance", "severity": "info", "phase": "training", "suggestions": []}
    spec = {"fit": {"epochs": 7}}
    verdict = final_verdict(took_off, CLASSIFIER, [resolved], spec)
    assert verdict.evidence["verdict"] == "learning" and verdict.severity == "info"
    stuck = final_verdict(took_off[:4], CLASSIFIER, [{**resolved, "severity": "warning"}], spec)
    assert stuck.evidence["verdict"] == "not_learning" and stuck.severity == "warning"
