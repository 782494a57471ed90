"""The final verdict: learning against converged decided against the noise, a blow-up at the end,
the explained variance of a regression, and no risky suggestion for a job that learnt."""

from diagnosis.curves import Task
from diagnosis.verdict import final_verdict
from models.findings import Suggestion
from tests.diagnosis.test_rules import CLASSIFIER, REGRESSOR, run

SPEC = {"fit": {"epochs": 5, "batch_size": 32}, "model": {"layers": []},
        "compile": {"optimizer": "adam", "loss": "mse"}}
PREFLIGHT_FIX = Suggestion(summary="fix what preflight found: relu; drop Masking",
                           patch={"model": {"layers": [{"type": "Dense", "units": 2, "activation": "relu"}]}})


def test_a_short_job_still_falling_every_epoch_is_learning_and_is_offered_only_more_epochs():
    falling = run([2.0, 1.7, 1.5, 1.35, 1.25], [2.0, 1.75, 1.6, 1.5, 1.42], accuracy=[0.3, 0.4, 0.45, 0.5, 0.55])
    verdict = final_verdict(falling, CLASSIFIER, [], SPEC, preflight_fix=PREFLIGHT_FIX)
    assert verdict.evidence["verdict"] == "learning" and verdict.severity == "info"
    assert [s.summary for s in verdict.suggestions] == ["train for 10 epochs"]


def test_converged_only_when_flat_within_noise():
    flat = run([1.0, 0.5, 0.3, 0.3, 0.301, 0.299], [1.0, 0.55, 0.4, 0.41, 0.395, 0.402], val_cv=2.0, n_val=300)
    verdict = final_verdict(flat, CLASSIFIER, [], SPEC, preflight_fix=PREFLIGHT_FIX)
    assert verdict.evidence["verdict"] == "converged" and verdict.suggestions == []  # it learnt: no preflight fix
    # The same last three epochs falling 10 % on a large validation set is still learning.
    precise = run([1.0, 0.5, 0.3, 0.29, 0.28, 0.27], [1.0, 0.55, 0.44, 0.42, 0.41, 0.40], n_val=20000)
    assert final_verdict(precise, CLASSIFIER, [], SPEC).evidence["verdict"] == "learning"


def test_a_last_epoch_that_blew_up_is_not_converged():
    story3 = run([0.27, 0.02, 0.013, 0.014, 0.025, 0.008, 0.056],
                 [0.0295, 0.0063, 0.0192, 0.0093, 0.0015, 0.0042, 0.03], val_cv=1.5, n_val=200)
    verdict = final_verdict(story3, REGRESSOR, [], SPEC)
    assert verdict.evidence["verdict"] == "diverged" and verdict.evidence["last_jump"] >= 7
    assert "jumped" in verdict.message and verdict.severity == "warning"


def test_a_regression_verdict_states_the_explained_variance():
    position = run([1.2, 1.0, 0.9, 0.85, 0.8, 0.79], [1.1, 0.95, 0.85, 0.8, 0.78, 0.78])
    verdict = final_verdict(position, REGRESSOR, [], SPEC)
    assert verdict.evidence["explained_variance"] == 0.22 and "22% of the target variance" in verdict.message
    mae = Task(classification=False, loss="mean_absolute_error", chance_loss=0.8)
    by_mae = final_verdict(position, mae, [], SPEC)
    assert by_mae.evidence["explained_variance"] == 0.025 and by_mae.evidence["explained_by"] == "loss_reduction"
    assert "of the loss of predicting a constant" in by_mae.message


def test_a_learnt_job_with_an_unstable_warning_is_not_offered_the_preflight_fix():
    learnt = run([2.0, 1.0, 0.5, 0.3, 0.2, 0.15], [2.0, 1.1, 0.6, 0.4, 0.3, 0.28])
    unstable = {"code": "unstable", "severity": "warning", "phase": "training",
                "suggestions": [PREFLIGHT_FIX.model_dump(),
                                {"summary": "batch size 32", "patch": {"fit": {"batch_size": 32}}}]}
    verdict = final_verdict(learnt, CLASSIFIER, [unstable], SPEC, preflight_fix=PREFLIGHT_FIX)
    assert [s.summary for s in verdict.suggestions] == ["batch size 32"]


def test_a_job_that_did_not_learn_keeps_its_fixes_and_a_resolved_finding_no_longer_drives_it():
    took_off = run([2.09, 2.085, 2.08, 2.079, 1.7, 1.1, 0.5], [2.08, 2.08, 2.08, 2.07, 1.6, 1.0, 0.45],
                   accuracy=[0.12, 0.12, 0.12, 0.12, 0.3, 0.6, 0.85])
    resolved = {"code": "stuck_at_chance", "severity": "info", "phase": "training", "suggestions": []}
    spec = {"fit": {"epochs": 7}}
    verdict = final_verdict(took_off, CLASSIFIER, [resolved], spec)
    assert verdict.evidence["verdict"] == "learning" and verdict.severity == "info"
    stuck = {**resolved, "severity": "warning", "suggestions": [PREFLIGHT_FIX.model_dump()]}
    not_learning = final_verdict(took_off[:4], CLASSIFIER, [stuck], spec, preflight_fix=PREFLIGHT_FIX)
    assert not_learning.evidence["verdict"] == "not_learning" and not_learning.severity == "warning"
    assert not_learning.suggestions == [PREFLIGHT_FIX]


IRIS = Task(classification=True, loss="categorical_crossentropy", chance_loss=1.0986, majority_rate=0.34, classes=3,
            val_chance_loss=1.0986, val_majority_rate=0.34)


def test_a_short_run_above_chance_is_not_learning_and_is_offered_more_epochs():
    # Issue 10's iris fold: 2 epochs, still falling, above ln 3; accuracy at the majority rate.
    fold = run([1.45, 1.26], [1.40, 1.30], accuracy=[0.25, 0.3], val_accuracy=[0.22, 0.3], n_train=100, n_val=50)
    verdict = final_verdict(fold, IRIS, [], SPEC)
    assert verdict.evidence["verdict"] == "not_learning" and verdict.severity == "warning"
    assert "still falling" in verdict.message and [s.summary for s in verdict.suggestions] == ["train for 10 epochs"]
    # The same level after many flat epochs: not learning, and nothing to offer from the curves.
    flat = run([1.3] * 8, [1.3, 1.31, 1.3, 1.29, 1.3, 1.31, 1.3, 1.3], accuracy=[0.33] * 8, val_accuracy=[0.34] * 8)
    stuck = final_verdict(flat, IRIS, [], SPEC)
    assert stuck.evidence["verdict"] == "not_learning" and stuck.suggestions == []


def test_one_to_three_epochs_below_chance_are_learning_never_converged():
    for epochs in (1, 2, 3):
        short = run([0.9, 0.6, 0.6][:epochs], [0.9, 0.62, 0.62][:epochs], n_train=100, n_val=50)
        verdict = final_verdict(short, IRIS, [], SPEC)
        assert verdict.evidence["verdict"] == "learning" and verdict.severity == "info", epochs
        assert "too few" in verdict.message and [s.summary for s in verdict.suggestions] == ["train for 10 epochs"]


def test_a_loss_just_above_chance_with_an_accuracy_beyond_the_majority_rate_learnt():
    # A few confidently wrong samples keep the loss up; the accuracy (0.8 on 200 samples) says it classifies.
    overconfident = run([1.0, 0.7, 0.6, 0.55, 0.55], [1.2, 1.12, 1.1, 1.1, 1.1],
                        accuracy=[0.6, 0.8, 0.85, 0.86, 0.86], val_accuracy=[0.6, 0.75, 0.8, 0.8, 0.8], n_val=200)
    assert final_verdict(overconfident, IRIS, [], SPEC).evidence["verdict"] != "not_learning"
