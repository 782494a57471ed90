"""Open a stored dataset: a mapping from array name to a memory-mapped array.

No TensorFlow here: the API (preflight checks) and the worker both read
datasets through ``open_dataset``. Dense arrays come back as read-only
``np.memmap`` (rows are read from disk only when used; a stored array is
mapped only when it is looked up); variable-length
sequences as ``SequenceArray``; image folders as ``ImageFolder``.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from datastore.artifacts import ArtifactStore
from datastore.builtin import is_builtin, load_builtin
from datastore.kinds import STORED_COLUMN, ArrayKind
from datastore.layout import read_manifest
from datastore.npz import load_npz


@dataclass(frozen=True)
class SequenceArray:
    """Samples of different lengths, stored as all steps concatenated plus one length per sample.

    ``values[offsets[i]:offsets[i + 1]]`` is sample ``i``, of shape ``(lengths[i], *features)``.
    """

    values: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        offsets = np.zeros(len(self.lengths) + 1, np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        object.__setattr__(self, "offsets", offsets)

    @property
    def shape(self) -> tuple[int | None, ...]:
        return (len(self.lengths), None, *self.values.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.values[self.offsets[index]:self.offsets[index + 1]]


@dataclass(frozen=True)
class ImageFolder:
    """Image files, one per sample, decoded (and resized) only when trained on."""

    files: tuple[Path, ...]

    @property
    def shape(self) -> tuple[int | None, ...]:
        return (len(self.files), None, None, None)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("uint8")

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class TableView:
    """Columns of a stored table (a CSV): one column as ``(n,)``, several as ``(n, k)``."""

    table: np.ndarray
    index: tuple[int, ...]

    @property
    def squeeze(self) -> bool:
        return len(self.index) == 1

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.table),) if self.squeeze else (len(self.table), len(self.index))

    @property
    def dtype(self) -> np.dtype:
        return self.table.dtype

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, rows: Any) -> np.ndarray:
        picked = np.asarray(self.table[rows])[..., list(self.index)]
        return picked[..., 0] if self.squeeze else picked

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)


@dataclass(frozen=True)
class ColumnStack:
    """Several 1-D arrays seen as one ``(n, k)`` array, without copying them."""

    columns: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.columns[0]), len(self.columns))

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*(c.dtype for c in self.columns))

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.stack([np.asarray(c[index]) for c in self.columns], axis=-1)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)


ArrayLike = np.ndarray | SequenceArray | ImageFolder | ColumnStack | TableView


def kind_of(array: ArrayLike) -> ArrayKind:
    if isinstance(array, SequenceArray):
        return ArrayKind.sequence
    return ArrayKind.images if isinstance(array, ImageFolder) else ArrayKind.dense


class StoredDataset(Mapping[str, ArrayLike]):
    """The arrays of one dataset, plus what the manifest says about them."""

    def __init__(self, arrays: Mapping[str, ArrayLike], *, fmt: str, classes: list[str] | None = None,
                 categories: dict[str, list[str]] | None = None) -> None:
        self._arrays = arrays
        self.format = fmt
        self.classes = classes
        self.categories = categories or {}

    def __getitem__(self, name: str) -> ArrayLike:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def select(self, names: str | Sequence[str]) -> ArrayLike:
        return select(self, names)

    def classes_of(self, names: str | Sequence[str]) -> list[str] | None:
        """Class names for a target: the image folders' classes, or a categorical CSV column's values."""
        if isinstance(names, str) and names in self.categories:
            return self.categories[names]
        if self.format == "images" and names == "y":
            return self.classes
        return None


def select(arrays: Mapping[str, ArrayLike], names: str | Sequence[str]) -> ArrayLike:
    """One array by name, or several 1-D arrays (CSV columns) stacked as features, shape ``(n, k)``.

    Raises:
        KeyError: a name the dataset does not have.
    """
    if isinstance(names, str):
        return arrays[names]
    picked = [arrays[n] for n in names]
    tables = {id(p.table) for p in picked if isinstance(p, TableView)}
    if len(tables) == 1 and all(isinstance(p, TableView) for p in picked):  # one read per row, not per column
        return TableView(picked[0].table, tuple(i for p in picked for i in p.index))  # type: ignore[union-attr]
    return ColumnStack(tuple(picked))  # type: ignore[arg-type]


class HasPath(Protocol):
    path: str


class _DirectoryArrays(Mapping[str, ArrayLike]):
    """The arrays of a dataset folder, each opened (memory-mapped) when it is looked up, not before.

    A memory map holds a file descriptor while it lives; a dataset may hold a thousand arrays,
    and a job reads two of them. What a caller drops is unmapped at once, so iterating over every
    array (describing a dataset) keeps one open at a time. The CSV table is kept: its columns
    are views of that one file.
    """

    def __init__(self, directory: Path, entries: dict[str, dict[str, Any]]) -> None:
        self.directory = directory
        self.entries = entries
        self._tables: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> ArrayLike:
        entry, directory = self.entries[name], self.directory
        kind = entry["kind"]
        if kind == ArrayKind.dense:
            return _load(directory / entry["file"])
        if kind == STORED_COLUMN:
            if entry["file"] not in self._tables:
                self._tables[entry["file"]] = _load(directory / entry["file"])
            return TableView(self._tables[entry["file"]], (entry["index"],))
        if kind == ArrayKind.sequence:
            return SequenceArray(_load(directory / entry["values"]), np.load(directory / entry["lengths"]))
        if kind == ArrayKind.images:
            listing = (directory / entry["files"]).read_text(encoding="utf-8").splitlines()
            return ImageFolder(tuple(directory / f for f in listing))
        raise ValueError(f"unknown array kind {kind!r} in {directory / 'manifest.json'}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def open_directory(directory: Path) -> StoredDataset:
    manifest = read_manifest(directory)
    return StoredDataset(_DirectoryArrays(directory, manifest["arrays"]), fmt=manifest["format"],
                         classes=manifest.get("classes"), categories=manifest.get("categories"))


def open_dataset(store: ArtifactStore, dataset: str | HasPath) -> StoredDataset:
    """The arrays of a ``Dataset`` row (anything with its ``path``) or of a built-in name.

    Raises:
        KeyError: an unknown built-in name.
    """
    if isinstance(dataset, str):
        if not is_builtin(dataset):
            raise KeyError(dataset)
        return StoredDataset(load_builtin(dataset), fmt="builtin")
    path = store.resolve(dataset.path)
    if path.suffix == ".npz":  # stored before datasets became folders: read whole
        return StoredDataset(load_npz(path), fmt="npz")
    return open_directory(path)


def _load(path: Path) -> np.memmap:
    return np.load(path, mmap_mode="r", allow_pickle=False)
