"""The dataset description: statistics (sampled when large), label counts, sequence lengths."""

import numpy as np
import pytest

from datastore import describe as describe_module
from datastore.describe import RunningStats, describe, label_counts
from datastore.reader import SequenceArray


def test_running_statistics_over_chunks_match_numpy():
    data = np.random.default_rng(0).normal(5, 3, size=(1000, 4))
    stats = RunningStats(4)
    for chunk in np.array_split(data, 7):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(axis=0))
    np.testing.assert_allclose(stats.std, data.std(axis=0))
    np.testing.assert_array_equal(stats.min, data.min(axis=0))


def test_non_finite_values_are_counted_not_propagated():
    x = np.array([[1.0, np.nan], [3.0, 2.0], [np.inf, 4.0]])
    stats = describe({"x": x})["arrays"]["x"]["stats"]
    assert stats["nonfinite"] == 2 and stats["max"] == [3.0, 4.0] and stats["mean"] == [2.0, 3.0]


def test_large_arrays_are_sampled_evenly(tmp_path, monkeypatch):
    monkeypatch.setattr(describe_module, "SAMPLE_ROWS", 100)
    np.save(tmp_path / "x.npy", np.arange(10_000, dtype="float32")[:, None])
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    stats = describe({"x": x})["arrays"]["x"]["stats"]
    assert stats["sampled"] and stats["rows"] == 100
    assert stats["min"] == [0.0] and stats["max"] == [9999.0]  # evenly spaced: both ends are in
    assert stats["mean"][0] == pytest.approx(4999.5, rel=0.01)


@pytest.mark.parametrize(("y", "expected"), [
    (np.array([0, 1, 1, 2]), {"0": 1, "1": 2, "2": 1}),
    (np.eye(3)[[0, 2, 2]], {"0": 1, "2": 2}),
    (np.array([[1.0], [0.0], [1.0]]), {"0": 1, "1": 2}),
    (np.array([0.5, 1.5]), None),  # continuous: a regression target
    (np.random.default_rng(0).normal(size=(5, 3)), None),
])
def test_label_counts_only_for_class_labels(y, expected):
    assert label_counts(y) == expected


def test_sequences_report_their_lengths_and_step_statistics():
    values = np.array([[1.0], [2.0], [3.0], [10.0]], "float32")
    entry = describe({"x": SequenceArray(values, np.array([3, 1]))})["arrays"]["x"]
    assert entry["shape"] == [2, None, 1] and entry["kind"] == "sequence"
    assert entry["lengths"] == {"min": 1, "max": 3, "mean": 2.0, "p50": 2.0, "p95": 2.9}
    assert entry["stats"]["max"] == [10.0] and entry["stats"]["mean"] == [4.0]
