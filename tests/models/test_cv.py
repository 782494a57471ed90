"""models/cv.py: a cross-validation run's status, aggregate and findings, from its folds."""

import math
import statistics

import pytest
from pydantic import ValidationError

from models.cv import aggregate, cv_status, split_findings
from models.enums import JobStatus
from models.spec import JobSpec
from tests.specs import IRIS_MLP, spec

Q, R, S, F, C = (JobStatus.queued, JobStatus.running, JobStatus.succeeded, JobStatus.failed,
                 JobStatus.cancelled)


@pytest.mark.parametrize(("folds", "expected"), [
    ([Q, Q, Q], Q),
    ([R, Q, Q], R),
    ([S, Q, Q], R),  # one has ended, the others wait: the run is under way
    ([S, S, R], R),
    ([S, S, S], S),
    ([S, F, S], F),
    ([S, C, S], C),
    ([F, C, S], F),  # a failure outweighs a cancel
])
def test_the_run_status_follows_its_folds(folds, expected):
    assert cv_status(folds) is expected


def test_the_aggregate_is_mean_and_population_std_over_the_folds():
    folds = [{"epoch": 2, "val_loss": 0.5, "val_accuracy": 0.8},
             {"epoch": 2, "val_loss": 0.7, "val_accuracy": 0.9},
             {"epoch": 1, "val_loss": 0.6}]
    out = aggregate(folds)
    assert "epoch" not in out
    assert out["val_loss"]["n"] == 3
    assert math.isclose(out["val_loss"]["mean"], 0.6)
    assert math.isclose(out["val_loss"]["std"], statistics.pstdev([0.5, 0.7, 0.6]))
    assert out["val_accuracy"] == {"mean": pytest.approx(0.85), "std": pytest.approx(0.05), "n": 2}


def test_a_diverged_fold_makes_the_figure_null_instead_of_vanishing():
    out = aggregate([{"val_loss": 0.5}, {"val_loss": None}, None])
    assert out["val_loss"] == {"mean": None, "std": None, "n": 2}


def _finding(code, verdict=None, **extra):
    return {"code": code, "severity": "warning", "phase": "training", "message": code,
            "evidence": {"verdict": verdict} if verdict else {}, **extra}


def test_a_finding_of_most_folds_is_reported_once_with_its_folds_and_the_rest_per_fold():
    per_fold = [
        [_finding("overfitting", epoch=3), _finding("verdict", "overfitting")],
        [_finding("overfitting", epoch=5), _finding("verdict", "overfitting"), _finding("unstable")],
        [_finding("verdict", "converged"), _finding("unstable")],
        [_finding("overfitting"), _finding("verdict", "converged")],
    ]
    whole_run, rest = split_findings(per_fold, 4)

    # overfitting: 3 of 4 folds; unstable: 2 of 4 (not more than half); verdicts split 2/2.
    assert [(f["code"], f["folds"]) for f in whole_run] == [("overfitting", [0, 1, 3])]
    assert whole_run[0]["epoch"] == 3  # as the first fold raised it
    assert [[f["code"] for f in found] for found in rest] == [
        ["verdict"], ["verdict", "unstable"], ["verdict", "unstable"], ["verdict"]]


def test_a_finding_counts_once_per_fold_and_against_all_k_folds():
    # Raised twice in one fold, and only 2 of 5 folds have findings yet: not a majority of K.
    per_fold = [[_finding("plateau"), _finding("plateau")], [_finding("plateau")], [], [], []]
    whole_run, rest = split_findings(per_fold, 5)
    assert whole_run == [] and [len(found) for found in rest] == [2, 1, 0, 0, 0]
    whole_run, _ = split_findings(per_fold[:2] + [[_finding("plateau")]], 3)
    assert whole_run[0]["folds"] == [0, 1, 2]


def test_a_spec_with_folds_round_trips_and_stores_no_validation_split():
    body = spec(IRIS_MLP, data={"folds": 4})
    del body["data"]["validation_split"]
    job_spec = JobSpec.model_validate(body)
    assert job_spec.data.folds == 4 and job_spec.data.validation_split == 0.0
    assert JobSpec.model_validate(job_spec.model_dump(mode="json")) == job_spec
    assert JobSpec.model_validate(spec(IRIS_MLP, data={"folds": 4, "validation_split": 0})).data.folds == 4
    with pytest.raises(ValidationError, match="validation_split cannot be used with folds"):
        JobSpec.model_validate(spec(IRIS_MLP, data={"folds": 4}))  # IRIS_MLP sets validation_split 0.2
