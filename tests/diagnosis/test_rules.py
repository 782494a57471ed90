"""The training-phase rules on curves shaped like the symptoms, and on healthy curves, with the
noise the monitor measures (per-sample spreads and sample counts) as real runs have it."""

import math
from dataclasses import replace

import numpy as np
import pytest

from diagnosis.curves import Epoch, Task
from diagnosis.noise import CLEAR
from diagnosis.registry import RESOLVERS, RULES
from models.findings import Code

LN8 = math.log(8)
CLASSIFIER = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=LN8, majority_rate=0.125,
                  classes=8)
REGRESSOR = Task(classification=False, loss="mean_squared_error", target_variance=1.0)


def run(losses, vals=None, accuracy=None, val_accuracy=None, pinned=None, grads=None, top=None,
        train_cv=0.3, val_cv=1.0, n_train=2000, n_val=500):
    """A history; each epoch's per-sample spread is ``cv`` times its loss (cross-entropy and squared
    errors spread about as widely as their mean, or more)."""
    history = []
    for i, loss in enumerate(losses):
        logs = {"loss": loss}
        if vals is not None:
            logs["val_loss"] = vals[i]
        if accuracy is not None:
            logs["accuracy"] = accuracy[i]
        if val_accuracy is not None:
            logs["val_accuracy"] = val_accuracy[i]
        history.append(Epoch(i + 1, logs, pinned_fraction=pinned[i] if pinned else None,
                             gradient_norms=grads[i] if grads else None, loss_std=train_cv * abs(loss), n_train=n_train,
                             val_loss_std=None if vals is None else val_cv * abs(vals[i]),
                             n_val=None if vals is None else n_val, top_class_share=top[i] if top else None))
    return history


def first(code: Code, history, task, warning: bool = True):
    """(epoch, result) of the first epoch the rule holds (as a warning or error, unless ``warning`` is False)."""
    for end in range(1, len(history) + 1):
        outcome = RULES[code](history[:end], task)
        if outcome is not None and (not warning or outcome.severity != "info"):
            return end, outcome
    return None, None


def first_epoch(code: Code, history, task, warning: bool = True) -> int | None:
    return first(code, history, task, warning)[0]


HEALTHY = run([2.0, 1.5, 1.1, 0.8, 0.6, 0.45, 0.35, 0.3, 0.27, 0.25],
              [2.0, 1.6, 1.2, 0.9, 0.7, 0.6, 0.55, 0.52, 0.5, 0.49],
              accuracy=[0.3, 0.5, 0.65, 0.75, 0.82, 0.87, 0.9, 0.92, 0.93, 0.94],
              pinned=[0.0, 0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.4, 0.45],
              grads=[[0.3, 0.2, 0.4]] * 10)


@pytest.mark.parametrize("code", list(RULES))
def test_a_healthy_run_raises_nothing(code):
    assert first_epoch(code, HEALTHY, CLASSIFIER, warning=False) is None


def noisy_healthy(seed: int, n_val: int, epochs: int = 25):
    """A healthy classifier: both losses fall to a floor; each epoch's validation loss is off its true value
    by its sampling noise (per-sample spread 2x the loss, as cross-entropy near 97 % accuracy has)."""
    rng = np.random.default_rng(seed)
    t = np.arange(epochs)
    val_true = 0.08 + 1.9 * np.exp(-t / 3)
    train_true = 0.05 + 2.0 * np.exp(-t / 3)
    spread = 2.0 / math.sqrt(n_val)  # one standard error, multiplicative: a mean of losses stays positive
    vals = val_true * np.exp(spread * rng.standard_normal(epochs) - spread**2 / 2)
    losses = train_true * (1 + 0.3 / math.sqrt(2000) * rng.standard_normal(epochs))
    accuracy = list(np.minimum(0.99, 0.3 + 0.7 * (1 - np.exp(-t / 3))))
    return run(list(losses), list(vals), accuracy=accuracy, val_accuracy=[a - 0.01 for a in accuracy],
               grads=[[0.3, 0.2, 0.4]] * epochs, train_cv=0.3, val_cv=2.0, n_val=n_val)


@pytest.mark.parametrize("n_val", [60, 360, 5000])
def test_healthy_noisy_curves_stay_clean_across_noise_draws(n_val):
    for seed in range(20):
        history = noisy_healthy(seed, n_val)
        raised = {code.value: first_epoch(code, history, CLASSIFIER) for code in RULES}
        assert {c: e for c, e in raised.items() if e is not None} == {}, seed


def test_unstable_not_on_sampling_noise_of_a_small_validation_set():
    # The healthy CNN: 3 reversals in 6 epochs, mean step 16 %, with ~360 validation samples.
    cnn = run([0.3, 0.2, 0.15, 0.12, 0.1, 0.09, 0.08, 0.075, 0.07, 0.065],
              [0.3, 0.2, 0.15, 0.12, 0.102, 0.079, 0.093, 0.078, 0.073, 0.083], val_cv=2.0, n_val=360)
    assert first_epoch(Code.unstable, cnn, CLASSIFIER) is None
    outcome = RULES[Code.unstable](cnn, CLASSIFIER)
    if outcome is not None:  # a weak result says why it is weak
        assert outcome.severity == "info" and "noise band ±" in outcome.evidence["noise"]
    # Story 5's fixed retry: relative steps at a loss near zero are noise, not instability.
    near_zero = run([0.5, 0.1, 0.03, 0.02, 0.01, 0.008, 0.005, 0.003],
                    [0.4, 0.08, 0.026, 0.004, 0.012, 0.0015, 0.006, 0.0004], val_cv=3.0, n_val=90)
    assert first_epoch(Code.unstable, near_zero, Task(classification=True, loss="categorical_crossentropy",
                                                      chance_loss=math.log(2), majority_rate=0.5)) is None


def test_unstable_bouncing_beyond_noise_shows_the_band():
    story3 = run([0.27, 0.02, 0.013, 0.014, 0.025, 0.008, 88.0], [0.0295, 0.0063, 0.0892, 0.0093, 0.0015, 0.0042, 2.77],
                 val_cv=1.5, n_val=200)
    epoch, outcome = first(Code.unstable, story3, REGRESSOR)
    assert epoch == 6
    assert outcome.evidence["confidence"] >= CLEAR and outcome.evidence["n"] == 200
    assert "val_loss moved" in outcome.evidence["noise"] and "(n=200)" in outcome.evidence["noise"]
    descent = run([1.2, 0.85, 0.85, 0.5, 0.39, 0.42, 0.23], [1.19, 0.85, 0.85, 0.50, 0.394, 0.424, 0.227])
    assert first_epoch(Code.unstable, descent, REGRESSOR, warning=False) is None


def test_stuck_at_chance_story_4_and_not_a_slow_starter():
    stuck = run([2.0973, 2.0894, 2.0831, 2.0811, 2.0814], [2.08] * 5, accuracy=[0.12, 0.12, 0.11, 0.12, 0.12],
                train_cv=0.01)
    assert first_epoch(Code.stuck_at_chance, stuck, CLASSIFIER) in (3, 4)
    # Near uniform predictions: the per-sample losses all sit near ln 8 (a small spread).
    slow = run([2.138, 2.084, 2.074, 2.064, 2.042, 1.9], [2.13, 2.085, 2.076, 2.066, 2.045, 1.91],
               accuracy=[0.12, 0.13, 0.14, 0.14, 0.16, 0.2], train_cv=0.01, val_cv=0.05)
    assert first_epoch(Code.stuck_at_chance, slow, CLASSIFIER, warning=False) is None
    # The training loss drifting down while validation stays at chance: memorising labels it cannot predict.
    shuffled = run([2.3346, 2.3057, 2.2983, 2.2924, 2.2902], [2.3501, 2.341, 2.3386, 2.3377, 2.3407],
                   accuracy=[0.108, 0.121, 0.116, 0.127, 0.13], train_cv=0.2, val_cv=0.2, n_train=1438, n_val=359)
    ten = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=2.3017, majority_rate=0.105)
    assert first_epoch(Code.stuck_at_chance, shuffled, ten) <= 4


def test_stuck_just_above_chance_with_one_predicted_class_next_to_vanishing_gradients():
    # A learning rate far too large killed the network after the first epoch: 2-3 % above the label entropy.
    ln10 = math.log(10)
    task = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=ln10, majority_rate=0.1)
    dead = run([1.2, 2.36, 2.355, 2.362, 2.358, 2.36], [1.1, 2.37, 2.36, 2.37, 2.36, 2.37],
               accuracy=[0.6, 0.1, 0.1, 0.1, 0.1, 0.1], top=[0.3, 1.0, 1.0, 1.0, 1.0, 1.0], train_cv=0.02,
               grads=[[0.1, 0.1, 0.2]] + [[1e-9, 1e-6, 0.01]] * 5)
    epoch, outcome = first(Code.stuck_at_chance, dead, task)
    assert epoch == 4 and outcome.evidence["top_class_share"] == 1.0 and "one class" in outcome.message
    assert first_epoch(Code.vanishing_gradients, dead, task) == 3
    well_above = run([2.9, 2.9, 2.9, 2.9], accuracy=[0.1] * 4, train_cv=0.02)  # 26 % above: not "just above"
    assert first_epoch(Code.stuck_at_chance, well_above, task, warning=False) is None


def test_stuck_at_chance_uses_the_label_entropy_not_ln_k():
    imbalanced = Task(classification=True, loss="binary_crossentropy", chance_loss=0.325, majority_rate=0.9, classes=2)
    at_entropy = run([0.33, 0.326, 0.325, 0.325], accuracy=[0.9] * 4, train_cv=0.05)
    assert first_epoch(Code.stuck_at_chance, at_entropy, imbalanced) == 4
    ln2 = Task(**{**imbalanced.__dict__, "chance_loss": math.log(2)})
    assert first_epoch(Code.stuck_at_chance, at_entropy, ln2, warning=False) is None  # ln 2 would miss it


def test_regression_no_better_than_a_constant_is_stuck_label_like_targets_too():
    # mse on 0/1 targets: the constant predictor's loss is p(1-p) = 0.25; accuracy 0.48 means nothing here.
    label_like = Task(classification=False, loss="mean_squared_error", chance_loss=0.25, target_variance=0.25,
                      label_like=True)
    flat = run([0.31, 0.2502, 0.2500, 0.2501, 0.2500], [0.2503, 0.2501, 0.2502, 0.2501, 0.2502],
               accuracy=[0.48] * 5, train_cv=0.05)
    epoch, outcome = first(Code.stuck_at_chance, flat, label_like)
    assert epoch == 4 and "labels" in outcome.message
    # Without a chance level from the worker, mse falls back on the target variance.
    assert first_epoch(Code.stuck_at_chance, run([1.0, 1.0, 1.0], train_cv=0.05), REGRESSOR) == 3
    learning = run([1.0, 0.8, 0.6, 0.5, 0.45], [1.0, 0.85, 0.65, 0.55, 0.5])
    assert first_epoch(Code.stuck_at_chance, learning, label_like, warning=False) is None


def test_saturated_outputs_keras_3_loss_in_the_thousands():
    saturated = run([1526.0, 900.0], [9.1, 6.4], pinned=[1.0, 0.98], train_cv=1.0, n_train=300)
    assert first_epoch(Code.saturated_outputs, saturated, CLASSIFIER) == 1
    confident_and_right = run([0.05, 0.03], [0.06, 0.05], pinned=[0.99, 1.0])
    assert first_epoch(Code.saturated_outputs, confident_and_right, CLASSIFIER, warning=False) is None


def test_diverging_on_nan_explosion_and_a_joint_rise_beyond_noise():
    assert first_epoch(Code.diverging, run([1.0, float("nan")], [1.0, 1.0]), CLASSIFIER) == 2
    assert first_epoch(Code.diverging, run([3e23], [6e11]), CLASSIFIER) == 1
    rising = run([1.0, 0.8, 0.9, 1.1, 1.4, 1.9], [1.0, 0.9, 1.0, 1.2, 1.5, 2.0])
    assert first_epoch(Code.diverging, rising, REGRESSOR) == 5  # 3 rising epochs, above the start
    # The same shape inside the noise of a 20-sample validation set is not divergence.
    creeping = run([1.0, 0.8, 0.81, 0.83, 0.85, 1.51], [1.0, 0.9, 0.91, 0.93, 0.95, 1.0], n_val=20, train_cv=0.5,
                   n_train=40)
    assert first_epoch(Code.diverging, creeping, REGRESSOR, warning=False) is None
    recovering = run([0.6, 30.0, 8.0, 3.0, 1.2, 0.8], [0.6, 40.0, 9.0, 4.0, 1.5, 1.0])
    assert first_epoch(Code.diverging, recovering, REGRESSOR, warning=False) is None


def test_overfitting_names_the_best_epoch_and_ignores_one_noisy_epoch():
    vals = [1.93, 1.2, 0.9, 0.8, 0.85, 0.95, 1.1, 1.3]
    overfit = run([2.0, 1.2, 0.8, 0.5, 0.35, 0.25, 0.15, 0.1], vals)
    assert first_epoch(Code.overfitting, overfit[:7], CLASSIFIER) is None  # 0.8 → 0.95: not yet beyond noise
    overfit += run([0.07], [1.5])
    outcome = RULES[Code.overfitting](overfit, CLASSIFIER)
    assert outcome.evidence["best_epoch"] == 4 and outcome.evidence["by"] == "rise"
    assert outcome.evidence["confidence"] >= CLEAR and outcome.severity == "warning"
    noisy = run([2.0, 1.2, 0.8, 0.5, 0.35, 0.25, 0.15], [1.9, 1.2, 0.9, 0.8, 1.0, 0.82, 0.79])
    assert first_epoch(Code.overfitting, noisy, CLASSIFIER, warning=False) is None
    handled = Task(**{**CLASSIFIER.__dict__, "early_stopping_restores_best": True})
    assert RULES[Code.overfitting](overfit, handled).severity == "info"


def test_overfitting_a_rise_inside_the_noise_of_a_small_validation_set_is_not():
    wiggle = run([2.0, 1.2, 0.8, 0.5, 0.45, 0.42, 0.4, 0.38], [1.9, 1.2, 0.9, 0.8, 0.86, 0.88, 0.87, 0.9],
                 val_cv=1.5, n_val=40)
    assert first_epoch(Code.overfitting, wiggle, CLASSIFIER) is None


def test_overfitting_from_a_memorisation_gap():
    # Train 0.03 against validation 0.36, accuracy 1.0 against 0.85, best validation epoch 20 before the end.
    epochs = 30
    t = np.arange(epochs)
    losses = list(0.03 + 1.9 * np.exp(-t / 3))
    vals = list(np.where(t < 8, 0.33 + 1.7 * np.exp(-t / 2.5) - 1.7 * np.exp(-8 / 2.5), 0.33 + 0.03 * (t - 8) / 22))
    accuracy = list(np.minimum(1.0, 0.4 + 0.65 * (1 - np.exp(-t / 3))))
    val_accuracy = list(np.minimum(0.85, 0.4 + 0.5 * (1 - np.exp(-t / 3))))
    history = run(losses, vals, accuracy=accuracy, val_accuracy=val_accuracy, val_cv=3.0, n_val=500)
    best = min(range(epochs), key=lambda i: vals[i]) + 1
    epoch, outcome = first(Code.overfitting, history, CLASSIFIER)
    assert epoch is not None and epoch <= best + 8, (best, epoch)
    assert outcome.evidence["by"] == "gap" and outcome.evidence["confidence"] >= CLEAR
    assert RULES[Code.overfitting](history, CLASSIFIER).severity == "warning"


def test_no_overfitting_when_nothing_was_learnt_or_while_recovering_from_a_blow_up():
    saturated = run([800.0, 600.0, 500.0, 400.0, 300.0, 250.0], [900.0, 950.0, 1000.0, 1100.0, 1200.0, 1300.0],
                    accuracy=[0.5] * 6, val_accuracy=[0.5] * 6, pinned=[1.0] * 6)
    binary = Task(classification=True, loss="categorical_crossentropy", chance_loss=math.log(2), majority_rate=0.5)
    assert first_epoch(Code.overfitting, saturated, binary, warning=False) is None
    recovering = run([0.6, 0.5, 30.0, 5.0, 0.45, 0.4], [0.55, 0.45, 40.0, 8.0, 1.5, 1.2])
    assert first_epoch(Code.overfitting, recovering, binary, warning=False) is None
    at_chance = run([0.69, 0.6, 0.5, 0.4, 0.3, 0.2], [0.69, 0.69, 0.7, 0.72, 0.75, 0.8])
    assert first_epoch(Code.overfitting, at_chance, binary, warning=False) is None


def test_plateau_for_regression_and_classification():
    flat = run([0.9, 0.62, 0.6, 0.6, 0.6, 0.6, 0.6], [0.9, 0.62, 0.61, 0.61, 0.61, 0.61, 0.61])
    assert first_epoch(Code.plateau, flat, REGRESSOR) == 6
    converged = run([0.9, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05], [0.9, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert first_epoch(Code.plateau, converged, REGRESSOR, warning=False) is None
    # Still falling beyond the (small) noise of a large training set: a slow learner, not a plateau.
    slow = run([0.9, 0.7, 0.66, 0.65, 0.64, 0.63, 0.62], [0.9, 0.7, 0.67, 0.665, 0.66, 0.655, 0.65],
               train_cv=0.5, n_train=20000, n_val=5000)
    assert first_epoch(Code.plateau, slow, REGRESSOR, warning=False) is None
    # A linear model on a non-linear target: a level with batch noise, train no better than validation.
    noisy_level = run([2.26, 0.97, 0.975, 0.964, 0.968, 0.963, 0.979], [1.05, 1.04, 1.008, 1.015, 1.022, 1.028, 1.049],
                      train_cv=0.9, n_train=800, n_val=200)
    task = Task(classification=False, loss="mean_squared_error", target_variance=1.51)
    assert first_epoch(Code.plateau, noisy_level, task) in (6, 7)
    # Converged with a generalization gap (train 0.41 against validation 0.53): a limit of the data, not a plateau.
    converged_with_gap = run([0.93, 0.58, 0.46, 0.44, 0.435, 0.434, 0.433, 0.434],
                             [0.70, 0.58, 0.556, 0.55, 0.53, 0.531, 0.53, 0.531], train_cv=1.0, n_train=354, n_val=88)
    assert first_epoch(Code.plateau, converged_with_gap, REGRESSOR, warning=False) is None
    at_constant = run([1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert first_epoch(Code.plateau, at_constant, REGRESSOR, warning=False) is None  # stuck_at_chance's


def test_vanishing_gradients_from_the_probe_norms():
    deep = run([2.3, 2.3, 2.3], grads=[[8e-6, 1e-4, 0.5]] * 3)
    epoch, outcome = first(Code.vanishing_gradients, deep, CLASSIFIER)
    assert epoch == 2 and outcome.evidence["confidence"] >= CLEAR


def test_every_result_carries_its_confidence():
    cases = [(Code.diverging, run([1.0, float("nan")], [1.0, 1.0]), CLASSIFIER),
             (Code.stuck_at_chance, run([2.08, 2.08, 2.08], accuracy=[0.12] * 3, train_cv=0.01), CLASSIFIER),
             (Code.saturated_outputs, run([1526.0], [9.1], pinned=[1.0]), CLASSIFIER),
             (Code.plateau, run([0.9, 0.62, 0.6, 0.6, 0.6, 0.6], [0.9, 0.62, 0.61, 0.61, 0.61, 0.61]), REGRESSOR)]
    for code, history, task in cases:
        outcome = RULES[code](history, task)
        assert outcome is not None and outcome.evidence["confidence"] >= 1, code


def test_a_stuck_finding_resolves_when_the_model_takes_off():
    took_off = run([2.09, 2.085, 2.08, 2.079, 1.7, 1.1, 0.5], [2.08, 2.08, 2.08, 2.07, 1.6, 1.0, 0.45],
                   accuracy=[0.12, 0.12, 0.12, 0.12, 0.3, 0.6, 0.85])
    assert RESOLVERS[Code.stuck_at_chance](took_off, CLASSIFIER)
    assert not RESOLVERS[Code.stuck_at_chance](took_off[:4], CLASSIFIER)


def test_overfitting_a_steady_climb_that_each_step_hides_in_the_noise():
    # Story 4's fixed faces (128 validation samples): each epoch's rise is inside the band of a step,
    # the climb since the best epoch is steady: its trend decides.
    vals = [2.078, 2.078, 2.075, 2.063, 2.040, 1.972, 1.882, 1.702, 1.641, 1.594, 1.549, 1.580, 1.539, 1.571, 1.552,
            1.630, 1.604, 1.687, 1.723, 1.745, 1.848, 1.903, 1.887, 2.144, 2.096]
    losses = [2.116, 2.080, 2.078, 2.067, 2.052, 1.999, 1.903, 1.741, 1.654, 1.544, 1.513, 1.424, 1.340, 1.285, 1.217,
              1.156, 1.120, 1.019, 0.928, 0.901, 0.783, 0.706, 0.590, 0.515, 0.442]
    faces = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=2.076, majority_rate=0.135)
    history = run(losses, vals, train_cv=0.8, val_cv=1.0, n_train=192, n_val=128)
    epoch, outcome = first(Code.overfitting, history, faces)
    assert epoch is not None and epoch <= 23 and outcome.evidence["best_epoch"] == 13
    assert RULES[Code.overfitting](history[:18], faces) is None  # 1.54 → 1.69: not yet clear


def test_unstable_from_a_training_loss_spike_that_a_wide_validation_band_hides():
    # Batch size 1 at Adam 0.05: the validation loss climbs and falls without alternating, inside a band
    # widened by a few confidently wrong samples; the training loss (a full pass) jumps 4.6-fold and back.
    spiky = run([0.44, 0.24, 0.42, 1.11, 0.34, 0.24, 0.085, 0.48, 0.027, 0.029],
                [0.24, 1.03, 1.74, 2.84, 2.92, 3.96, 3.42, 1.45, 1.72, 1.73], train_cv=4.0, val_cv=1.5,
                n_train=455, n_val=114)
    epoch, outcome = first(Code.unstable, spiky, CLASSIFIER)
    assert epoch is not None and epoch <= 7
    assert outcome.evidence["confidence"] >= CLEAR and "loss" in outcome.evidence
    assert "fell back" in outcome.message and "noise band ±" in outcome.message
    # A rise that stays is a trend (diverging's call), not a bounce; an uptick inside a descent is not a spike.
    climbing = run([0.44, 0.24, 0.42, 1.11, 1.2, 1.3, 1.4, 1.5], [0.5, 0.5, 0.6, 1.2, 1.3, 1.4, 1.5, 1.6],
                   train_cv=4.0, val_cv=1.5, n_train=455, n_val=114)
    assert first_epoch(Code.unstable, climbing, CLASSIFIER) is None
    descent = run([1.2, 0.85, 0.8, 0.5, 0.39, 0.45, 0.23, 0.2], [1.19, 0.85, 0.8, 0.50, 0.394, 0.44, 0.227, 0.2],
                  train_cv=0.3, n_train=2000)
    assert first_epoch(Code.unstable, descent, REGRESSOR, warning=False) is None


DEAD_TASK = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=0.6926, majority_rate=0.516,
                 classes=2)
DEAD_LOSSES = [307.6, 5.51, 0.844, 1.108, 0.65, 0.636, 0.704, 0.6525, 0.697, 0.674]
DEAD_VALS = [41.5, 2.07, 1.31, 1.046, 0.945, 0.982, 1.01, 0.946, 0.964, 0.944]


def test_stuck_when_accuracy_sits_at_the_majority_rate_though_the_loss_wobbles_past_chance():
    # An Adam rate of 1 killed the relu units: the training loss scatters ±0.05 around the label entropy
    # (below it too: the constant output chases the latest batches), the accuracy is that of one class.
    dead = run(DEAD_LOSSES, DEAD_VALS, accuracy=[0.585, 0.59, 0.539, 0.56, 0.527, 0.5625, 0.5175, 0.529, 0.481, 0.541],
               train_cv=0.5, val_cv=1.2, n_train=800, n_val=200)
    epoch, outcome = first(Code.stuck_at_chance, dead, DEAD_TASK)
    assert epoch is not None and epoch >= 5 and outcome.evidence["confidence"] >= CLEAR
    # The same losses with an accuracy climbing beyond its binomial noise: the model uses its input.
    learning = run(DEAD_LOSSES, DEAD_VALS, accuracy=[0.585, 0.59, 0.6, 0.62, 0.64, 0.66, 0.68, 0.7, 0.72, 0.74],
                   train_cv=0.5, val_cv=1.2, n_train=800, n_val=200)
    assert first_epoch(Code.stuck_at_chance, learning, DEAD_TASK) is None


def test_stuck_when_unseen_data_gets_nothing_though_the_training_loss_memorises():
    # Shuffled regression targets: the training MSE falls to 0.85 of the variance (memorised), the validation
    # MSE never gets below the validation targets' own variance (0.78 here: less than the training split's 1.0).
    losses = [1.20, 1.06, 1.02, 0.99, 0.97, 0.95, 0.93, 0.93, 0.92, 0.91]
    vals = [0.870, 0.859, 0.848, 0.850, 0.864, 0.849, 0.859, 0.867, 0.874, 0.880]
    shuffled = run(losses, vals, train_cv=1.3, val_cv=1.5, n_train=800, n_val=200)
    task = Task(classification=False, loss="mean_squared_error", chance_loss=1.0, target_variance=1.0,
                val_chance_loss=0.776)
    epoch, outcome = first(Code.stuck_at_chance, shuffled, task)
    assert epoch is not None and epoch <= 4 and outcome.evidence["val_chance_loss"] == 0.776
    # The same curves where the validation targets vary as much as the training ones: it learnt something.
    assert first_epoch(Code.stuck_at_chance, shuffled, replace(task, val_chance_loss=1.0)) is None
    # Thrown up and down beyond its noise above the constant's level: diverging's or unstable's call, not stuck.
    thrown = run(losses[:4], [0.907, 1.539, 1.504, 2.9], train_cv=1.3, val_cv=1.5, n_train=800, n_val=88)
    assert first_epoch(Code.stuck_at_chance, thrown, task) is None
    # Overconfident, not stuck: a validation loss above the constant's from a few confidently wrong samples,
    # at a validation accuracy far above the majority rate.
    binary = Task(classification=True, loss="binary_crossentropy", chance_loss=0.66, majority_rate=0.62,
                  val_chance_loss=0.667, val_majority_rate=0.6)
    overconfident = run([1.0, 0.49, 0.49, 0.64, 0.19, 0.05], [1.64, 0.83, 2.85, 1.57, 1.03, 0.87],
                        accuracy=[0.94, 0.98, 0.97, 0.97, 0.99, 0.99],
                        val_accuracy=[0.956, 0.956, 0.93, 0.947, 0.94, 0.94],
                        train_cv=4.0, val_cv=2.5, n_train=455, n_val=114)
    assert first_epoch(Code.stuck_at_chance, overconfident, binary) is None


def test_overfitting_a_steady_climb_of_a_few_percent_on_a_large_validation_set():
    # 20 % wrong labels: validation flat, then a slow steady climb of ~8 % that every step hides in the band
    # of 1400 samples; training keeps falling. The fitted line since the best epoch rose past 3 %: material.
    vals = [1.95, 1.54, 1.26, 1.17, 1.15, 1.126, 1.119, 1.113, 1.104, 1.113, 1.110, 1.117, 1.117, 1.115, 1.133,
            1.124, 1.154, 1.138, 1.170, 1.176, 1.191, 1.236, 1.194, 1.193]
    losses = [2.18, 1.74, 1.33, 1.11, 1.02, 0.955, 0.921, 0.878, 0.826, 0.801, 0.781, 0.770, 0.724, 0.700, 0.702,
              0.680, 0.648, 0.629, 0.601, 0.592, 0.557, 0.595, 0.566, 0.516]
    ten = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=2.295, majority_rate=0.117)
    history = run(losses, vals, train_cv=1.0, val_cv=1.6, n_train=359, n_val=1438)
    epoch, outcome = first(Code.overfitting, history, ten)
    assert epoch is not None and epoch <= 21 and outcome.evidence["best_epoch"] == 9
    assert RULES[Code.overfitting](history[:14], ten) is None  # 1.104 → 1.115: not material


def test_overfitting_memorisation_is_not_postponed_by_small_new_lows():
    # 270 digits, two 256-unit layers (calibration bug-overfit-memorise-digits-s1): from epoch 14 the validation
    # loss only dips by 1-3 % now and then while training accuracy sits at 0.99-1.0 against 0.94. Counting from
    # the lowest epoch, each dip restarted the wait (raised at 27); counting from the epoch the validation loss
    # stopped improving materially (3 %), the gap is seen four epochs after the stall.
    losses = [2.1506, 1.6544, 1.1276, 0.6921, 0.4347, 0.2954, 0.2304, 0.1886, 0.134, 0.1123, 0.1006, 0.0828, 0.0754,
              0.0662, 0.055, 0.0515, 0.0501, 0.0413, 0.0392, 0.0329, 0.0317, 0.0261, 0.0236, 0.0208]
    vals = [1.8996, 1.4254, 0.9288, 0.6023, 0.4705, 0.3422, 0.3619, 0.2729, 0.2613, 0.2378, 0.2402, 0.2212, 0.2264,
            0.2135, 0.2309, 0.2117, 0.2181, 0.2072, 0.211, 0.2072, 0.2088, 0.2141, 0.203, 0.209]
    accuracy = [0.378, 0.781, 0.896, 0.915, 0.926, 0.959, 0.956, 0.967, 0.974, 0.985, 0.981, 0.985, 0.989, 0.993,
                0.993, 0.996, 0.993, 0.993, 0.993, 0.996, 0.993, 0.996, 1.0, 1.0]
    val_accuracy = [0.656, 0.792, 0.89, 0.903, 0.905, 0.925, 0.901, 0.938, 0.933, 0.941, 0.935, 0.938, 0.938, 0.943,
                    0.938, 0.938, 0.938, 0.941, 0.94, 0.944, 0.938, 0.938, 0.941, 0.94]
    digits = Task(classification=True, loss="sparse_categorical_crossentropy", chance_loss=2.29, majority_rate=0.11,
                  classes=10)
    history = run(losses, vals, accuracy=accuracy, val_accuracy=val_accuracy, train_cv=2.2, val_cv=2.9, n_train=270,
                  n_val=1527)
    epoch, outcome = first(Code.overfitting, history, digits)
    assert epoch is not None and 17 <= epoch <= 21, epoch  # stalled from epoch 16 (0.2117; the lowest was 0.2030)
    assert outcome.evidence["by"] == "gap" and outcome.evidence["since_epoch"] <= epoch - 4
    # Without the fitted training set (accuracy far from perfect, validation close to it) the same losses are no gap.
    close = run(losses, vals, accuracy=[a - 0.05 for a in accuracy], val_accuracy=[a - 0.04 for a in accuracy],
                train_cv=2.2, val_cv=2.9, n_train=270, n_val=1527)
    assert first_epoch(Code.overfitting, close, digits) is None


def test_diverging_from_a_climbing_training_loss_while_validation_bounces():
    # SGD 0.1 with momentum 0.95 on diabetes (88 validation samples): the training loss climbs 0.91 → 1.88 over
    # epochs 4-7 while the validation loss jumps up and down; waiting for validation to climb too waited for the
    # blow-up at epoch 11.
    losses = [0.9971, 1.1235, 0.9052, 1.1945, 1.2985, 1.5224, 1.8833, 1.3592]
    vals = [1.0914, 1.0539, 1.0748, 0.9729, 2.3619, 1.1165, 0.9825, 3.7235]
    history = run(losses, vals, train_cv=2.4, val_cv=1.5, n_train=354, n_val=88)
    epoch, outcome = first(Code.diverging, history, REGRESSOR)
    assert epoch is not None and epoch <= 7 and outcome.severity == "error"
    assert "Train loss has risen" in outcome.message and "loss" in outcome.evidence["noise"]


def test_unstable_from_a_loss_thrown_off_over_two_epochs_and_back():
    # Batch 1 at Adam 0.05 (calibration bug-unstable-batch1-s2): the training loss climbs 0.24 → 0.42 → 1.11 and falls
    # back to 0.34, 0.24; neither step alone is beyond the band of heavy-tailed per-sample losses, the climb is.
    losses = [0.4381, 0.2412, 0.4202, 1.1059, 0.3368, 0.2389, 0.0851, 0.4842]
    vals = [0.2391, 1.0336, 1.7438, 2.8394, 2.924, 3.9627, 3.4152, 1.4549]
    binary = Task(classification=True, loss="binary_crossentropy", chance_loss=0.663, majority_rate=0.63, classes=2)
    history = run(losses, vals, train_cv=9.0, val_cv=1.3, n_train=455, n_val=114)
    epoch, outcome = first(Code.unstable, history, binary)
    assert epoch is not None and epoch <= 8 and outcome.evidence["confidence"] >= CLEAR


def test_saturated_outputs_when_a_blown_up_epoch_widens_its_own_training_band():
    # Story 5 (RMSprop 0.1 on raw pixels): epoch 1's training loss is 152,595, one batch at 2.3e6 among batches
    # at 10-10,000; that spread is the blow-up, not sampling noise, and its band (±3e5) hid the loss. The
    # validation loss of the same end-of-epoch model, 9.16 on 120 fixed samples against 0.68, is clear of its band.
    two = Task(classification=True, loss="categorical_crossentropy", chance_loss=0.692, majority_rate=0.525, classes=2,
               val_chance_loss=0.679)
    blown = run([152595.0], [9.16], pinned=[1.0], train_cv=22.4, val_cv=0.83, n_train=480, n_val=120)
    outcome = RULES[Code.saturated_outputs](blown, two)
    assert outcome is not None and outcome.severity == "warning" and outcome.evidence["confidence"] >= CLEAR
    without_validation = run([152595.0], pinned=[1.0], train_cv=22.4, n_train=480)
    assert RULES[Code.saturated_outputs](without_validation, two).severity == "info"  # the training band alone
