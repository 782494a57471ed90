"""datastore/splits.py: the one rule that cuts a dataset into train, validation (a fold's held-out part)
and test, for the worker and the API alike."""

import numpy as np
import pytest

from datastore.splits import fold_parts, fold_problem, holdout_parts, indices_digest, sample_order
from models.spec import split_sizes

N, SEED = 103, 11
LABELS = np.repeat([0, 1, 2], [60, 30, 13])  # sorted and imbalanced, as a careless upload is


def all_folds(k: int, *, n_test: int = 0, seed: int = SEED, shuffle: bool = True, labels=LABELS):
    order = sample_order(N, seed, shuffle)
    return [fold_parts(order, n_test=n_test, folds=k, fold=i, seed=seed, shuffle=shuffle, labels=labels)
            for i in range(k)]


@pytest.mark.parametrize("labels", [LABELS, None], ids=["stratified", "plain"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_each_sample_outside_the_test_part_is_held_out_exactly_once(k, labels):
    n_test = split_sizes(N, 0.0, 0.2)[2]
    parts = all_folds(k, n_test=n_test, labels=labels)

    held = np.concatenate([p.held_out for p in parts])
    test = parts[0].test
    assert len(held) == len(set(held.tolist())) == N - n_test  # once each, none twice
    assert set(held.tolist()) | set(test.tolist()) == set(range(N))
    for part in parts:
        assert set(part.train.tolist()).isdisjoint(part.held_out.tolist())
        assert set(part.train.tolist()) | set(part.held_out.tolist()) == set(held.tolist())
        # The test part stays out of every fold, and is the same for every fold.
        assert set(test.tolist()).isdisjoint(part.train.tolist())
        assert set(test.tolist()).isdisjoint(part.held_out.tolist())
        assert np.array_equal(part.test, test)


def test_the_test_part_is_the_one_an_ordinary_job_with_the_same_seed_tests_on():
    # An ordinary job's split: train, validation, then test, from the end of the order.
    order = sample_order(N, SEED, True)
    n_train, n_val, n_test = split_sizes(N, 0.2, 0.1)
    ordinary = holdout_parts(order, n_validation=n_val, n_test=n_test)
    assert np.array_equal(np.concatenate([ordinary["train"], ordinary["validation"], ordinary["test"]]), order)
    assert [len(ordinary[k]) for k in ("train", "validation", "test")] == [n_train, n_val, n_test]
    ordinary_test = ordinary["test"]
    cv_test = fold_parts(order, n_test=split_sizes(N, 0.0, 0.1)[2], folds=3, fold=0, seed=SEED, shuffle=True,
                         labels=LABELS).test
    assert n_test == len(cv_test) and np.array_equal(np.sort(cv_test), np.sort(ordinary_test))


def test_stratified_folds_keep_the_class_proportions_of_sorted_data():
    for part in all_folds(5):
        counts = np.bincount(LABELS[part.held_out], minlength=3)
        assert np.all(np.abs(counts - np.array([60, 30, 13]) / 5) <= 1), counts  # every class in every fold


def test_plain_folds_of_sorted_unshuffled_data_are_what_the_stratified_rule_avoids():
    # Without stratification or shuffling, K-fold takes contiguous blocks: the first fold holds only class 0.
    first = all_folds(3, shuffle=False, labels=None)[0]
    assert set(LABELS[first.held_out].tolist()) == {0}
    assert np.array_equal(first.held_out, np.arange(35))


def test_the_same_seed_gives_the_same_folds_and_another_seed_other_folds():
    again = all_folds(3)
    assert all(np.array_equal(a.held_out, b.held_out) for a, b in zip(all_folds(3), again, strict=True))
    other = all_folds(3, seed=SEED + 1)
    assert any(not np.array_equal(np.sort(a.held_out), np.sort(b.held_out))
               for a, b in zip(again, other, strict=True))
    assert len({indices_digest(p.held_out) for p in again}) == 3  # the fingerprint tells the folds apart


def test_the_fingerprint_ignores_order():
    assert indices_digest(np.array([3, 1, 2])) == indices_digest(np.array([1, 2, 3]))
    assert indices_digest(np.array([1, 2])) != indices_digest(np.array([1, 2, 3]))


def test_more_folds_than_samples_or_than_the_smallest_class_are_refused_with_a_sentence():
    order = sample_order(N, SEED, True)
    assert fold_problem(order, n_test=0, folds=13, labels=LABELS) is None
    message = fold_problem(order, n_test=0, folds=14, labels=LABELS)
    assert message is not None and "class 2 has 13" in message and "folds=14" in message
    assert fold_problem(order, n_test=0, folds=14, labels=None) is None  # plain K-fold only needs samples
    tiny = sample_order(5, SEED, True)
    message = fold_problem(tiny, n_test=2, folds=4, labels=None)
    assert message is not None and "there are 3" in message and "test_split" in message
    with pytest.raises(ValueError, match="class 2"):
        fold_parts(order, n_test=0, folds=14, fold=0, seed=SEED, shuffle=True, labels=LABELS)
    with pytest.raises(ValueError, match="fold must be"):
        fold_parts(order, n_test=0, folds=3, fold=3, seed=SEED, shuffle=True, labels=None)
