"""Reference levels: the loss of the best constant prediction, under the job's own loss, for every kind of target."""

import numpy as np
import pytest

from diagnosis.reference import task_of

RNG = np.random.default_rng(3)


def brute_force(y: np.ndarray, loss) -> float:
    """The best constant's loss per column found on a fine grid (the slow, obvious way)."""
    rows = y.reshape(len(y), -1)
    best = []
    for column in rows.T:
        grid = np.linspace(column.min(), column.max(), 2001)
        best.append(min(loss(column, c).mean() for c in grid))
    return float(np.mean(best))


def test_regression_loss_on_zero_one_targets_is_label_like_with_p_times_one_minus_p():
    y = (RNG.random(2000) < 0.3).astype(np.float32)
    task = task_of(y, "mean_squared_error")
    p = y.mean()
    assert not task.classification and task.label_like
    assert task.chance_loss == pytest.approx(p * (1 - p))  # what a network stuck at the mean scores
    assert task.majority_rate == pytest.approx(1 - p) and task.classes == 2


def test_mae_reference_is_the_spread_around_the_median():
    y = RNG.exponential(2.0, size=(3000, 1))
    task = task_of(y, "mean_absolute_error")
    assert task.chance_loss == pytest.approx(np.abs(y - np.median(y)).mean())
    assert task.chance_loss < np.abs(y - y.mean()).mean()  # the median, not the mean, is the best constant
    assert not task.label_like


def test_multi_output_regression_gets_the_mean_variance():
    y = RNG.normal(size=(3000, 3)) * np.array([1.0, 2.0, 4.0])
    task = task_of(y, "mean_squared_error")
    assert task.chance_loss == pytest.approx(task.target_variance)
    assert task.chance_loss == pytest.approx((1 + 4 + 16) / 3, rel=0.1)
    assert not task.label_like and not task.classification


def test_whole_numbers_with_many_values_are_a_regression_not_labels():
    ages = RNG.integers(18, 90, size=2000).astype(np.float32)
    assert not task_of(ages, "mean_squared_error").label_like
    ratings = RNG.integers(1, 6, size=2000)
    task = task_of(ratings, "mean_absolute_error")
    assert task.label_like and task.classes == 5


def test_one_and_multi_hot_targets_under_mse_are_label_like():
    one_hot = np.eye(4)[RNG.integers(0, 4, 1000)]
    assert task_of(one_hot, "mean_squared_error").label_like
    multi_hot = (RNG.random((1000, 4)) < 0.4).astype(np.float32)
    task = task_of(multi_hot, "mean_squared_error")
    assert task.label_like and task.multi_label
    assert task.chance_loss == pytest.approx(float((multi_hot.mean(0) * (1 - multi_hot.mean(0))).mean()))


@pytest.mark.parametrize(("loss", "elementwise"), [
    ("huber", lambda t, c: np.where(np.abs(t - c) <= 1, 0.5 * (t - c) ** 2, np.abs(t - c) - 0.5)),
    ("log_cosh", lambda t, c: np.log(np.cosh(t - c))),
    ("mean_absolute_percentage_error", lambda t, c: 100 * np.abs(t - c) / np.abs(t)),
])
def test_other_elementwise_losses_find_the_best_constant(loss, elementwise):
    y = RNG.lognormal(0.0, 0.7, size=(400, 2)) + 0.5
    assert task_of(y, loss).chance_loss == pytest.approx(brute_force(y, elementwise), rel=1e-3)


def test_binary_crossentropy_chance_is_the_entropy_of_each_column():
    y = (RNG.random((5000, 1)) < 0.1).astype(np.float32)
    task = task_of(y, "binary_crossentropy")
    p = y.mean()
    assert task.classification and not task.multi_label and task.classes == 2
    assert task.chance_loss == pytest.approx(-(p * np.log(p) + (1 - p) * np.log(1 - p)), rel=1e-4)


def test_per_step_labels_under_sparse_cross_entropy():
    y = RNG.choice(3, size=(500, 12), p=[0.6, 0.3, 0.1])
    task = task_of(y, "sparse_categorical_crossentropy")
    assert task.classification and task.classes == 3
    assert task.chance_loss == pytest.approx(-(np.array([0.6, 0.3, 0.1]) * np.log([0.6, 0.3, 0.1])).sum(), abs=0.02)


def test_a_loss_without_a_reference_says_none():
    y = RNG.normal(size=(100, 3))
    task = task_of(y, "cosine_similarity")
    assert task.chance_loss is None and task.target_variance is not None
    continuous = task_of(RNG.normal(size=100), "sparse_categorical_crossentropy")
    assert not continuous.classification and continuous.chance_loss is None
