"""The split rule and the part several members all held out (``datastore.splits``)."""

import numpy as np
import pytest

from datastore.splits import NoHeldOut, common_held_out, split_parts
from models.spec import DataSpec


def parts(samples: int, seed: int, **data) -> dict:
    return split_parts(samples, DataSpec(**data), seed)


def test_the_parts_cover_every_sample_once_with_the_sizes_of_the_spec():
    got = parts(1000, 3, validation_split=0.2, test_split=0.1)
    assert {k: len(v) for k, v in got.items()} == {"train": 700, "validation": 200, "test": 100}
    assert sorted(np.concatenate(list(got.values())).tolist()) == list(range(1000))


def test_without_shuffle_the_held_out_parts_are_the_last_fractions_as_keras_takes_them():
    got = parts(10, 99, validation_split=0.2, test_split=0.1, shuffle=False)
    assert got["validation"].tolist() == [7, 8] and got["test"].tolist() == [9]


def test_the_worker_trains_on_exactly_the_train_part_of_the_rule():
    from worker.data import prepare

    x, y = np.arange(200, dtype="float32").reshape(100, 2), np.arange(100) % 3
    data = prepare({"x": x, "y": y}, DataSpec(validation_split=0.3, test_split=0.2), seed=5)
    rule = parts(100, 5, validation_split=0.3, test_split=0.2)
    assert data.train.indices.tolist() == rule["train"].tolist()
    assert data.test.indices.tolist() == rule["test"].tolist()


def test_members_with_the_same_seed_and_splits_share_their_whole_test_part():
    members = [parts(500, 7, test_split=0.2) for _ in range(3)]
    held = common_held_out(members)
    assert held.part == "test" and held.indices.tolist() == sorted(members[0]["test"].tolist())


def test_with_different_seeds_only_the_samples_in_every_test_part_are_kept_and_none_was_trained_on():
    members = [parts(2000, seed, validation_split=0.1, test_split=0.5) for seed in (1, 2, 3)]
    held = common_held_out(members)
    expected = set(members[0]["test"]) & set(members[1]["test"]) & set(members[2]["test"])
    assert held.part == "test" and set(held.indices.tolist()) == expected and 0 < len(held) < 1000
    for member in members:
        assert not set(held.indices.tolist()) & set(member["train"].tolist())


def test_when_one_member_has_no_test_part_the_validation_parts_are_intersected():
    members = [parts(1000, 1, validation_split=0.3, test_split=0.1), parts(1000, 2, validation_split=0.5)]
    held = common_held_out(members)
    assert held.part == "validation"
    assert set(held.indices.tolist()) == set(members[0]["validation"]) & set(members[1]["validation"])
    assert not set(held.indices.tolist()) & (set(members[0]["train"]) | set(members[1]["train"]))


def test_a_member_that_held_out_nothing_is_named():
    members = [parts(100, 1, validation_split=0.2), parts(100, 1, validation_split=0.0)]
    with pytest.raises(NoHeldOut) as raised:
        common_held_out(members)
    assert raised.value.member == 1


def test_disjoint_held_out_parts_are_refused():
    members = [parts(10, 0, validation_split=0.1, shuffle=False), parts(10, 0, validation_split=0.2, test_split=0.1,
                                                                         shuffle=False)]
    # validation parts: [9] and [7, 8]: nothing in common
    with pytest.raises(NoHeldOut, match="share no sample"):
        common_held_out(members)
