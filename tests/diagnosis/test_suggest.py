"""Fixes that are known to help: the learning rate moves the way the evidence points, and a fix that cannot
change training is never offered to a run that does not learn."""

import math

from diagnosis.curves import Epoch, Task
from diagnosis.patches import merge_patch
from diagnosis.registry import training_suggestions
from diagnosis.suggest import changes_training, keeps_what_learnt
from models.findings import Code
from models.spec import JobSpec
from tests.specs import IRIS_MLP

TASK = Task(
    classification=True, loss="categorical_crossentropy", chance_loss=math.log(3), majority_rate=0.34, classes=3
)
METRIC_ONLY = ({"compile": {"metrics": ["mae"]}}, ["metric_not_meaningful: replace accuracy with mae"])
RESCALE = ({"data": {"scale_x": "rescale"}}, ["unscaled_inputs: rescale the inputs"])


def spec(optimizer, scale_x="standardize"):
    body = {**IRIS_MLP, "compile": {**IRIS_MLP["compile"], "optimizer": optimizer},
            "data": {**IRIS_MLP["data"], "scale_x": scale_x}}
    return JobSpec.model_validate(body).model_dump(mode="json")


def flat_run(gradients):
    return [Epoch(i + 1, {"loss": 1.0986, "accuracy": 0.34}, gradient_norms=gradients) for i in range(4)]


def rates(suggestions, base):
    """The learning rate each suggestion leaves (None when it leaves the optimizer alone)."""
    out = []
    for s in suggestions:
        optimizer = merge_patch(base, s.patch)["compile"]["optimizer"]
        changed = optimizer != base["compile"]["optimizer"]
        out.append(optimizer["learning_rate"] if changed and isinstance(optimizer, dict) else None)
    return out


SMALL = [1e-7, 1e-6, 2e-5]
HEALTHY = [0.05, 0.1, 0.2]


def test_stuck_with_small_gradients_and_a_small_rate_raises_the_rate_never_lowers_it():
    # Story 1's failing retry: Adam at 1e-4, gradients vanished, and the old top fix lowered it to 1e-5.
    base = spec({"type": "Adam", "learning_rate": 1e-4}, scale_x=None)
    for code in (Code.stuck_at_chance, Code.vanishing_gradients, Code.plateau):
        found = training_suggestions(code, base, None, flat_run(SMALL), TASK)
        moved = [r for r in rates(found, base) if r is not None]
        assert moved == [1e-3], code
        assert any(merge_patch(base, s.patch)["data"]["scale_x"] == "rescale" for s in found), code


def test_a_rate_far_above_the_default_is_lowered_even_when_gradients_vanished():
    # A large SGD rate killed the units: the gradients are small because the network is dead.
    base = spec({"type": "SGD", "learning_rate": 5.0})
    for code in (Code.stuck_at_chance, Code.vanishing_gradients, Code.plateau):
        found = training_suggestions(code, base, METRIC_ONLY, flat_run(SMALL), TASK)
        moved = [r for r in rates(found, base) if r is not None]
        assert moved and all(r < 5.0 for r in moved), code
        assert all("mae" not in str(s.patch) for s in found), code  # the metric-only fix cannot change training
    first = training_suggestions(Code.stuck_at_chance, base, METRIC_ONLY, flat_run(SMALL), TASK)[0]
    assert rates([first], base) == [0.5]


def test_healthy_gradients_at_a_usual_rate_leave_the_rate_alone():
    base = spec("adam")
    found = training_suggestions(Code.stuck_at_chance, base, None, flat_run(HEALTHY), TASK)
    assert all(r is None for r in rates(found, base))


def test_diverging_and_unstable_lower_the_rate():
    base = spec({"type": "Adam", "learning_rate": 1e-4})
    for code in (Code.diverging, Code.unstable):
        moved = [r for r in rates(training_suggestions(code, base, None, flat_run(HEALTHY), TASK), base) if r]
        assert moved == [1e-5], code


def test_saturated_from_a_large_rate_lowers_it_a_hundredfold_and_not_at_the_default():
    large = spec({"type": "Adam", "learning_rate": 0.1})
    assert rates(training_suggestions(Code.saturated_outputs, large, None, flat_run(HEALTHY), TASK), large)[0] == 1e-3
    usual = spec("adam")
    assert all(r is None for r in rates(training_suggestions(Code.saturated_outputs, usual, None, [], TASK), usual))


def test_a_preflight_fix_that_changes_training_comes_first_but_not_for_overfitting():
    base = spec("adam", scale_x=None)
    stuck = training_suggestions(Code.stuck_at_chance, base, RESCALE, flat_run(HEALTHY), TASK)
    assert stuck[0].patch == RESCALE[0] and stuck[0].summary.startswith("fix the causes found before training")
    overfit = training_suggestions(Code.overfitting, base, RESCALE, flat_run(HEALTHY), TASK)
    assert overfit and all(s.patch != RESCALE[0] for s in overfit)


def test_a_metric_only_preflight_fix_is_never_offered_for_a_training_finding():
    base = spec("adam")
    for code in Code:
        if code.value in {"diverging", "stuck_at_chance", "plateau", "unstable", "vanishing_gradients",
                          "saturated_outputs"}:
            found = training_suggestions(code, base, METRIC_ONLY, flat_run(SMALL), TASK)
            assert all("metrics" not in s.patch.get("compile", {}) for s in found), code


def test_what_a_fix_changes():
    assert not changes_training({"compile": {"metrics": ["mae"]}, "name": "x"})
    assert changes_training({"data": {"scale_x": "rescale"}})
    assert changes_training({"compile": {"metrics": ["mae"], "optimizer": {"type": "Adam", "learning_rate": 0.01}}})
    # A job that learnt is offered only fixes that leave its model, loss and optimizer alone.
    assert keeps_what_learnt({"data": {"shuffle": True}, "compile": {"metrics": ["mae"]}})
    assert not keeps_what_learnt({"model": {"layers": [{"type": "Dense", "units": 1}]}})
    assert not keeps_what_learnt({"compile": {"optimizer": {"type": "Adam", "learning_rate": 1e-3}}})
