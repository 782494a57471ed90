"""The search space: distributions, the values written into the spec, what is checked before a sweep starts."""

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from pydantic import ValidationError

from models.spec import JobSpec
from models.sweep_spec import SweepRequest
from sweeps import space
from tests.specs import DIGITS_CNN, IRIS_MLP


def request(space_: dict, **extra) -> SweepRequest:
    return SweepRequest.model_validate({"spec": IRIS_MLP, "space": space_, **extra})


def test_each_kind_of_distribution_becomes_optunas():
    got = space.distributions(request({
        "compile.optimizer.learning_rate": {"loguniform": [1e-4, 1e-1]},
        "fit.batch_size": {"choice": [16, 32, 64]},
        "model.layers.0.units": {"int": [8, 64], "step": 8},
        "data.validation_split": {"uniform": [0.1, 0.3]},
    }))
    assert got == {
        "compile.optimizer.learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "data.validation_split": FloatDistribution(0.1, 0.3),
        "fit.batch_size": CategoricalDistribution([16, 32, 64]),
        "model.layers.0.units": IntDistribution(8, 64, step=8),
    }


def test_a_trial_spec_has_the_values_at_their_paths_and_the_sweeps_stop_on():
    base = JobSpec.model_validate(IRIS_MLP).model_dump(mode="json")  # optimizer given by name: "adam"
    params = {"compile.optimizer.learning_rate": 0.003, "model.layers.0.units": 24, "data.scale_x": "minmax",
              "fit.batch_size": 8}
    spec = JobSpec.model_validate(space.trial_spec(base, params, stop_on=["diverging"], name="s #0"))
    assert spec.compile.optimizer.type == "adam" and spec.compile.optimizer.args == {"learning_rate": 0.003}
    assert spec.model.layers[0].args["units"] == 24 and spec.model.layers[1].args["units"] == 3
    assert (spec.data.scale_x, spec.fit.batch_size, spec.diagnosis.stop_on, spec.name) == (
        "minmax", 8, ["diverging"], "s #0")
    assert base["compile"]["optimizer"] == "adam"  # the base is left as it was


def test_a_path_through_a_missing_index_or_a_scalar_is_named():
    base = JobSpec.model_validate(IRIS_MLP).model_dump(mode="json")
    with pytest.raises(space.SpacePathError, match="model.layers.5.units") as exc:
        space.trial_spec(base, {"model.layers.5.units": 3}, stop_on=[], name=None)
    assert "not an index of a list of 2" in exc.value.message
    with pytest.raises(space.SpacePathError, match="fit.epochs.x"):
        space.trial_spec(base, {"fit.epochs.x": 3}, stop_on=[], name=None)


def test_an_unknown_path_makes_a_spec_that_pydantic_refuses():
    base = JobSpec.model_validate(IRIS_MLP).model_dump(mode="json")
    with pytest.raises(ValidationError, match="n_epochs"):
        JobSpec.model_validate(space.trial_spec(base, {"fit.n_epochs": 3}, stop_on=[], name=None))


def test_the_points_checked_are_each_value_alone_or_the_whole_small_grid():
    ranges = request({"compile.optimizer.learning_rate": {"loguniform": [1e-4, 1e-1]},
                      "model.layers.0.units": {"int": [8, 60], "step": 8}, "fit.batch_size": {"choice": [16, 32]}})
    assert space.points_to_check(ranges) == [
        {"compile.optimizer.learning_rate": 1e-4}, {"compile.optimizer.learning_rate": 1e-1},
        {"fit.batch_size": 16}, {"fit.batch_size": 32},
        {"model.layers.0.units": 8}, {"model.layers.0.units": 56},  # the top of the step grid
    ]
    small_grid = request({"fit.batch_size": {"choice": [16, 32]}, "data.scale_x": {"choice": ["minmax", None]}},
                         sampler="grid")
    assert len(space.points_to_check(small_grid)) == 4
    assert space.planned_trials(small_grid) == 4  # max_trials (20) beyond the grid
    assert space.planned_trials(request({"fit.batch_size": {"choice": [16, 32]}}, max_trials=3)) == 3


@pytest.mark.parametrize(("dist", "message"), [
    ({"loguniform": [0, 1]}, "0 < low < high"),
    ({"uniform": [2, 1]}, "low < high"),
    ({"int": [1, 9], "step": 2, "log": True}, "log scale"),
    ({"choice": []}, "at least 1"),
    ({"normal": [0, 1]}, "expected one of"),
    ({"choice": [1], "step": 2}, "Extra inputs"),
])
def test_a_bad_distribution_is_refused_with_its_reason(dist, message):
    with pytest.raises(ValidationError, match=message):
        request({"fit.batch_size": dist})


def test_the_request_round_trips():
    sweep = request({"fit.batch_size": {"choice": [16, 32]}, "model.layers.0.units": {"int": [8, 64]}},
                    sampler="grid", spec=DIGITS_CNN)
    assert SweepRequest.model_validate(sweep.model_dump(mode="json")) == sweep
