"""open_dataset: stored folders, datasets stored before folders (.npz files), built-ins."""

from types import SimpleNamespace

import numpy as np
import pytest

from datastore.artifacts import ArtifactStore
from datastore.ingest import ingest
from datastore.limits import Limits
from datastore.reader import SequenceArray, TableView, open_dataset
from tests.data_files import csv_bytes, npz_bytes, sequences


def test_a_stored_folder_opens_as_memory_mapped_arrays(tmp_path):
    store = ArtifactStore(tmp_path)
    (tmp_path / "up.npz").write_bytes(npz_bytes(**sequences(n=5), w=np.ones((5, 2))))
    ingest(tmp_path / "up.npz", ".npz", tmp_path / "datasets" / "abc", Limits())

    arrays = open_dataset(store, SimpleNamespace(path="datasets/abc"))

    assert sorted(arrays) == ["w", "x", "y"] and arrays.format == "npz"
    assert isinstance(arrays["w"], np.memmap) and isinstance(arrays["x"], SequenceArray)
    assert arrays["x"].shape == (5, None, 7)


def test_csv_columns_open_as_views_of_one_table_and_carry_their_categories(tmp_path):
    (tmp_path / "t.csv").write_bytes(csv_bytes(n=10))
    ingest(tmp_path / "t.csv", ".csv", tmp_path / "datasets" / "t", Limits())

    arrays = open_dataset(ArtifactStore(tmp_path), SimpleNamespace(path="datasets/t"))

    both = arrays.select(["a", "target"])
    assert isinstance(both, TableView) and both.shape == (10, 2)
    assert arrays.classes_of("color") == ["blue", "green", "red"] and arrays.classes_of("a") is None


def test_datasets_stored_as_npz_files_and_built_ins_still_open(tmp_path):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "old.npz").write_bytes(npz_bytes(x=np.zeros((4, 2)), y=np.arange(4)))
    store = ArtifactStore(tmp_path)

    assert open_dataset(store, SimpleNamespace(path="datasets/old.npz"))["y"].tolist() == [0, 1, 2, 3]
    assert open_dataset(store, "builtin:iris")["x"].shape == (150, 4)
    with pytest.raises(KeyError):
        open_dataset(store, "ds_not_a_builtin")
