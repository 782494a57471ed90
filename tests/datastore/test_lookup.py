"""find_dataset: the one lookup of a job's dataset, for the API and the worker."""

from types import SimpleNamespace

import numpy as np
import pytest

from datastore.artifacts import ArtifactStore
from datastore.ingest import ingest
from datastore.limits import Limits
from datastore.lookup import UnknownDataset, find_dataset
from tests.data_files import npz_bytes


def no_rows(dataset_id: str) -> None:
    return None


def test_an_unknown_built_in_or_id_raises_the_one_error_naming_it(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(UnknownDataset, match="unknown built-in dataset 'builtin:mnist'") as caught:
        find_dataset(store, "builtin:mnist", no_rows)
    assert caught.value.ref == "builtin:mnist"
    with pytest.raises(UnknownDataset, match="no dataset with id 'ds_gone'"):
        find_dataset(store, "ds_gone", no_rows)


def test_a_built_in_is_found_without_asking_for_a_row(tmp_path):
    def row_of(dataset_id: str) -> None:
        raise AssertionError(f"a row was asked for {dataset_id}")

    found = find_dataset(ArtifactStore(tmp_path), "builtin:iris", row_of)

    assert found.arrays["x"] == {"shape": [150, 4], "dtype": "float32", "kind": "dense"}
    assert found.description is not None and found.description["samples"] == 150
    assert found.open()["x"].shape == (150, 4)


def test_a_row_is_found_by_id_and_its_files_opened_only_when_asked(tmp_path):
    (tmp_path / "up.npz").write_bytes(npz_bytes(x=np.ones((6, 3), "float32"), y=np.arange(6)))
    ingested = ingest(tmp_path / "up.npz", ".npz", tmp_path / "datasets" / "abc", Limits())
    row = SimpleNamespace(path="datasets/abc", arrays=ingested.arrays, description=ingested.description)
    asked: list[str] = []

    found = find_dataset(ArtifactStore(tmp_path), "ds_abc", lambda dataset_id: asked.append(dataset_id) or row)

    assert asked == ["ds_abc"] and found.arrays == ingested.arrays and found.description == ingested.description
    np.testing.assert_array_equal(found.open()["y"], np.arange(6))
