"""Reading rows from stored arrays: the same values as NumPy indexing, without mapping the file."""

import numpy as np

from datastore.limits import Budget, Limits
from datastore.reader import SequenceArray
from datastore.rows import file_backed, pad_sequences, read_rows, take, take_steps


def stored(tmp_path, array: np.ndarray, name: str = "a.npy") -> np.memmap:
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


def test_rows_read_from_the_file_match_numpy_indexing_in_any_order_with_repeats(tmp_path):
    array = np.random.default_rng(0).normal(size=(1000, 3, 5)).astype("float32")
    mapped = stored(tmp_path, array)
    indices = np.array([999, 0, 1, 2, 500, 2, 3, 998])

    assert file_backed(mapped) and not file_backed(mapped[1:]) and not file_backed(array)
    np.testing.assert_array_equal(read_rows(mapped, indices), array[indices])
    np.testing.assert_array_equal(take(mapped[::2], np.array([1, 3])), array[::2][[1, 3]])  # a view: plain indexing


def test_big_endian_and_one_dimensional_arrays_read_back_exactly(tmp_path):
    array = np.arange(100, dtype=">i8")
    mapped = stored(tmp_path, array)
    np.testing.assert_array_equal(take(mapped, np.array([5, 99, 0])), [5, 99, 0])


def test_sequences_are_padded_with_zeros_to_the_longest_sample_of_the_batch(tmp_path):
    lengths = np.array([2, 5, 1])
    values = stored(tmp_path, np.arange(8 * 2, dtype="float32").reshape(8, 2) + 1)
    sequences = SequenceArray(values, lengths)

    batch = pad_sequences(take_steps(sequences, np.array([2, 0])))

    assert batch.shape == (2, 2, 2)  # the longest of this batch, not of the dataset
    np.testing.assert_array_equal(batch[0, 0], values[7])
    np.testing.assert_array_equal(batch[0, 1], [0, 0])  # the padding step
    np.testing.assert_array_equal(batch[1], values[0:2])
    np.testing.assert_array_equal(sequences[1], values[2:7])


def test_the_unpacking_budget_counts_real_bytes():
    budget = Budget(Limits(max_unpacked_bytes=10).max_unpacked_bytes)
    budget.spend(10, "x")
    try:
        budget.spend(1, "the archive")
    except ValueError as exc:
        assert "zip bomb" in str(exc) and exc.too_large  # type: ignore[attr-defined]
    else:
        raise AssertionError("the budget did not stop at its limit")


def test_select_rows_reads_columns_and_arrays_from_the_file_for_row_sampling_code(tmp_path):
    from datastore.reader import TableView
    from datastore.rows import DiskRows, select_rows

    table = stored(tmp_path, np.arange(30, dtype="float64").reshape(10, 3), "t.npy")
    x = stored(tmp_path, np.arange(20, dtype="float32").reshape(10, 2), "x.npy")
    arrays = {"a": TableView(table, (0,)), "c": TableView(table, (2,)), "x": x}

    columns = select_rows(arrays, ["c", "a"])
    rows = select_rows(arrays, "x")

    assert isinstance(rows, DiskRows) and rows.shape == (10, 2) and len(rows) == 10
    np.testing.assert_array_equal(rows[np.array([9, 1])], [[18, 19], [2, 3]])
    np.testing.assert_array_equal(columns[np.array([1, 0])], [[5, 3], [2, 0]])
    np.testing.assert_array_equal(np.asarray(select_rows(arrays, "a")), np.arange(0, 30, 3))
    assert select_rows(arrays, "nope") is None
