"""worker/data.prepare for a fold of a cross-validation run: the fold's held-out part is the validation
part, cut by the one split rule (datastore/splits.py), stratified by the labels the facts give."""

import numpy as np
import pytest

from datastore.splits import indices_digest
from diagnosis.facts import data_facts
from models.spec import DataSpec
from worker.data import DataError, prepare


def arrays(n=90):
    x = np.arange(n * 2, dtype="float32").reshape(n, 2)
    y = np.repeat([0, 1, 2], n // 3)  # sorted labels
    return {"x": x, "y": y}


def test_each_fold_validates_on_its_held_out_part_and_tests_on_the_common_test_part():
    data_arrays = arrays()
    labels = data_facts(data_arrays["x"], data_arrays["y"]).fold_labels("sparse_categorical_crossentropy")
    spec = DataSpec(folds=3, test_split=0.1, scale_x="standardize")
    folds = [prepare(data_arrays, spec, seed=5, fold=i, labels=labels) for i in range(3)]

    held = [set(f.validation.indices.tolist()) for f in folds]
    test = set(folds[0].test.indices.tolist())
    assert len(test) == 9 and all(set(f.test.indices.tolist()) == test for f in folds)
    assert sum(len(h) for h in held) == len(set().union(*held)) == 81  # each held out exactly once
    assert set().union(*held) | test == set(range(90))
    for fold in folds:
        assert len(fold.train) + len(fold.validation) == 81
        assert fold.summary["fold"]["stratified"] is True
        assert fold.summary["fold"]["held_out_sha256"] == indices_digest(fold.validation.indices)
        counts = fold.summary["splits"]["validation"]["label_counts"]
        assert set(counts) == {"0", "1", "2"}  # stratified: every class in every fold, although y is sorted
        # Scaling statistics come from the fold's training part only.
        np.testing.assert_allclose(np.asarray(fold.train.x).mean(axis=0), 0, atol=1e-5)
    assert len({f.summary["fold"]["held_out_sha256"] for f in folds}) == 3


def test_regression_targets_are_not_stratified_even_when_they_are_whole_numbers():
    x = np.arange(60, dtype="float32").reshape(60, 1)
    y = np.arange(60, dtype="float32") * 3  # whole numbers, one of each: diabetes-like
    facts = data_facts(x, y)
    assert facts.labels is not None  # the label rule alone reads them as labels
    assert facts.fold_labels("mse") is None and facts.fold_labels({"type": "MeanSquaredError"}) is None
    data = prepare({"x": x, "y": y}, DataSpec(folds=5), seed=1, fold=2, labels=None)
    assert data.summary["fold"]["stratified"] is False and len(data.validation) == 12


def test_a_spec_with_folds_needs_its_fold_and_enough_samples():
    with pytest.raises(DataError, match="not a fold"):
        prepare(arrays(), DataSpec(folds=3), seed=0)
    labels = np.repeat([0, 1], [88, 2])
    with pytest.raises(DataError, match="data.folds: stratified 3-fold"):
        prepare({"x": arrays()["x"], "y": labels}, DataSpec(folds=3), seed=0, fold=0, labels=labels)
