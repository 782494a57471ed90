"""Find a dataset by the reference a job spec names: a built-in name or an uploaded dataset's id.

The one lookup for every reader: the API (its checks and preflight) and the worker
(training). An unknown reference raises ``UnknownDataset`` whoever asks; the API maps
it to its 422 at ``dataset``, the worker to the job's ``DataError``. The rows live in the
database (``models``), which this package does not import: the caller passes how to
find a row by id (one ``session.get``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from datastore.artifacts import ArtifactStore
from datastore.builtin import builtin_names, is_builtin, load_builtin
from datastore.describe import array_summary, describe
from datastore.reader import StoredDataset, open_dataset


class UnknownDataset(LookupError):
    """No dataset with this id for the tenant, or no built-in of this name; the message is for the user."""

    def __init__(self, ref: str, message: str) -> None:
        super().__init__(message)
        self.ref, self.message = ref, message


class DatasetRow(Protocol):
    """What the lookup reads of a ``models.tables.Dataset`` row."""

    path: str
    arrays: dict[str, Any]
    description: dict[str, Any] | None


@cache
def builtin_description(ref: str) -> dict[str, Any]:
    """A built-in's description, computed once per process (they never change)."""
    return describe(load_builtin(ref))


@dataclass(frozen=True)
class FoundDataset:
    """A dataset that exists; its files are opened only when ``open`` is called."""

    ref: str
    arrays: dict[str, Any]  # the short form: {name: {"shape", "dtype", "kind"}}
    description: dict[str, Any] | None  # ``datastore.describe``; None for rows stored before descriptions
    _store: ArtifactStore
    _row: DatasetRow | None

    def open(self) -> StoredDataset:
        """The arrays, memory-mapped: nothing is read until a row is needed."""
        return open_dataset(self._store, self._row if self._row is not None else self.ref)


def find_dataset(store: ArtifactStore, ref: str, row_of: Callable[[str], DatasetRow | None]) -> FoundDataset:
    """The dataset ``ref`` names.

    Args:
        row_of: the dataset row with this id, or None (the caller's ``session.get(Dataset, id)``,
            tenant-scoped there); not asked for built-in names.

    Raises:
        UnknownDataset: no such built-in, or no such row.
    """
    if is_builtin(ref):
        if ref not in builtin_names():
            raise UnknownDataset(ref, f"unknown built-in dataset '{ref}'; built-ins: {builtin_names()}")
        description = builtin_description(ref)
        return FoundDataset(ref, array_summary(description), description, store, None)
    row = row_of(ref)
    if row is None:
        raise UnknownDataset(ref, f"no dataset with id '{ref}'; upload one with POST /v1/datasets")
    return FoundDataset(ref, row.arrays, row.description, store, row)
