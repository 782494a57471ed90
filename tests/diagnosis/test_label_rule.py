"""One label rule: the dataset description, the preflight facts and the worker's reference levels
agree on what every shape of target holds (issue 10: three rules used to disagree)."""

from types import SimpleNamespace

import numpy as np
import pytest

from datastore.describe import label_counts
from datastore.labels import targets_of
from diagnosis.facts import data_facts
from models.spec import JobSpec
from tests.specs import IRIS_MLP
from worker import diagnose
from worker.data import prepare
from worker.diagnose import make_task

ONE_HOT = np.eye(3, dtype=np.float32)[[0, 1, 2, 2, 1, 2]]
MULTI_HOT = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=np.float32)
# (name, y, kind, labels or None)
TABLE = [
    ("int labels (n,)", np.array([0, 1, 2, 2, 1, 2]), "labels", [0, 1, 2, 2, 1, 2]),
    ("int labels (n, 1)", np.array([[0], [1], [2], [2], [1], [2]], dtype=np.int32), "labels", [0, 1, 2, 2, 1, 2]),
    ("float-integer labels", np.array([0.0, 1.0, 2.0, 2.0, 1.0, 2.0]), "labels", [0, 1, 2, 2, 1, 2]),
    ("one-hot (n, k)", ONE_HOT, "one_hot", [0, 1, 2, 2, 1, 2]),
    ("one-hot ints (n, 2)", np.array([[1, 0], [0, 1], [0, 1], [1, 0], [1, 0], [1, 0]]), "one_hot", [0, 1, 1, 0, 0, 0]),
    ("multi-hot (n, k)", MULTI_HOT, "multi_hot", None),
    ("0/1 column", np.array([0.0, 1.0, 1.0, 0.0, 0.0, 0.0], dtype=np.float32), "labels", [0, 1, 1, 0, 0, 0]),
    ("negative ints", np.array([-1, 1, 1, -1, -1, -1]), "labels", [-1, 1, 1, -1, -1, -1]),
    ("continuous (n,)", np.array([0.5, 1.25, 2.0, 3.5, 0.1, 2.2]), "continuous", None),
    ("continuous (n, k)", np.random.default_rng(0).normal(size=(6, 3)), "continuous", None),
    ("integer outputs (n, k)", np.array([[2, 0], [1, 3], [0, 0], [4, 1], [1, 1], [2, 2]]), "continuous", None),
    ("rows with a 2 summing to 1", np.array([[2, -1], [0, 1], [1, 0], [0, 1], [1, 0], [1, 0]]), "continuous", None),
    ("NaN", np.array([0.0, 1.0, np.nan, 1.0, 0.0, 1.0]), "continuous", None),
]


def _task(y: np.ndarray, loss: str):
    spec = JobSpec.model_validate({**IRIS_MLP, "compile": {**IRIS_MLP["compile"], "loss": loss}})
    return make_task(spec, SimpleNamespace(train=SimpleNamespace(y=y), validation=None))


@pytest.mark.parametrize(("name", "y", "kind", "labels"), TABLE, ids=[row[0] for row in TABLE])
def test_description_preflight_and_worker_agree(name, y, kind, labels):
    targets = targets_of(y)
    assert targets.kind == kind
    assert (targets.labels is None) == (labels is None)
    if labels is not None:
        assert targets.labels.tolist() == labels
    expected = None if labels is None else {v: labels.count(v) for v in sorted(set(labels))}

    described = label_counts(y)
    assert described == (None if expected is None else {str(k): v for k, v in expected.items()})
    facts = data_facts(np.zeros((len(y), 2)), y)
    assert facts.label_counts == expected
    assert facts.one_hot_stored == (kind == "one_hot")

    # The worker's reference levels under the loss that fits class targets of this shape.
    task = _task(y, "categorical_crossentropy" if y.ndim == 2 and y.shape[1] > 1 else "sparse_categorical_crossentropy")
    assert task.classification == (expected is not None)
    if expected is not None:
        p = np.array(list(expected.values())) / len(y)
        assert task.majority_rate == pytest.approx(p.max())
        assert task.chance_loss == pytest.approx(float(-(p * np.log(p)).sum()))
    else:
        assert task.chance_loss is None and task.majority_rate is None


def test_multi_hot_targets_are_multi_label_with_per_column_chance():
    rng = np.random.default_rng(1)
    y = (rng.random((4000, 6)) < 0.5).astype(np.float32)  # several 1s per row: sigmoid + binary cross-entropy
    task = _task(y, "binary_crossentropy")
    assert task.classification and task.multi_label and task.classes == 6
    # Each column is a fair coin: the constant 0.5 scores ln 2 per column (the argmax reading gave 0.910).
    assert task.chance_loss == pytest.approx(np.log(2), abs=0.01)
    assert task.majority_rate == pytest.approx(0.5, abs=0.02)


def _prepared_task(y: np.ndarray, loss: str, **data):
    body = {**IRIS_MLP, "compile": {**IRIS_MLP["compile"], "loss": loss},
            "data": {"validation_split": 0.25, "one_hot": False, **data},
            "fit": {**IRIS_MLP["fit"], "callbacks": [{"type": "EarlyStopping", "restore_best_weights": True}]}}
    spec = JobSpec.model_validate(body)
    prepared = prepare({"x": np.zeros((len(y), 4), np.float32), "y": y}, spec.data, seed=0)
    return make_task(spec, prepared), prepared


def test_the_worker_reads_the_training_split_as_the_model_sees_it():
    labels = np.random.default_rng(2).choice(3, size=400, p=[0.5, 0.3, 0.2])
    task, prepared = _prepared_task(labels, "categorical_crossentropy", one_hot=True)  # one-hot applied by the worker
    train = labels[prepared.train.indices]
    p = np.bincount(train, minlength=3) / len(train)
    assert task.classification and task.classes == 3
    assert task.chance_loss == pytest.approx(float(-(p * np.log(p)).sum()))
    assert task.has_validation and task.early_stopping_restores_best
    # The validation split's own references: the best constant's loss and majority rate on its targets.
    unseen = np.bincount(labels[prepared.validation.indices], minlength=3) / len(prepared.validation)
    assert task.val_chance_loss == pytest.approx(float(-(unseen * np.log(unseen)).sum()))
    assert task.val_majority_rate == pytest.approx(unseen.max())

    values = np.random.default_rng(3).normal(50, 10, size=(400, 2)).astype(np.float32)
    scaled, _ = _prepared_task(values, "mean_squared_error", scale_y="standardize")
    assert scaled.chance_loss == pytest.approx(1.0, abs=1e-3)  # the scaler is fit on the training split


def test_mse_on_zero_one_targets_is_label_like_in_the_worker():
    y = (np.random.default_rng(4).random(400) < 0.5).astype(np.float32)
    task, prepared = _prepared_task(y, "mse")
    p = y[prepared.train.indices].mean()
    assert task.label_like and not task.classification
    assert task.chance_loss == pytest.approx(p * (1 - p))


def test_a_large_training_split_is_read_evenly_spaced(monkeypatch):
    monkeypatch.setattr(diagnose, "TARGET_ROWS", 200)
    labels = np.repeat([0, 1, 2, 3], 500)  # the order the worker's shuffle leaves is irrelevant to an even sample
    task, _ = _prepared_task(labels, "sparse_categorical_crossentropy")
    assert task.classes == 4 and task.chance_loss == pytest.approx(np.log(4), abs=0.02)
