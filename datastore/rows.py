"""Read chosen rows of a stored array without mapping the whole file into memory.

Rows of a memory-mapped ``.npy`` are read with ``preadv`` into a fresh buffer:
the pages go through the OS page cache but are never mapped into the process,
so its resident memory stays at one batch however large the dataset and
however many epochs touch it. In-memory arrays (built-ins) are simply indexed.
"""

import mmap
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from datastore.reader import ArrayLike, ColumnStack, ImageFolder, SequenceArray, TableView, select


def file_backed(array: np.ndarray) -> bool:
    """A whole ``.npy`` mapped by ``np.load(mmap_mode=...)``: its rows can be read from the file."""
    return (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap)
            and array.flags.c_contiguous and bool(array.filename))


def _runs(sorted_indices: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """(position in the sorted list, first row, row count) for each run of consecutive rows."""
    if len(sorted_indices) == 0:
        return
    breaks = np.flatnonzero(np.diff(sorted_indices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(sorted_indices)]])
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        yield a, int(sorted_indices[a]), b - a


def _pread_into(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise OSError(f"unexpected end of file at byte {offset + done}")
        done += got


def read_rows(array: np.memmap, indices: np.ndarray) -> np.ndarray:
    """``array[indices]`` read from the file; any order, repeats allowed."""
    indices = np.asarray(indices, dtype=np.int64)
    row_shape = array.shape[1:]
    row_bytes = array.dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
    order = np.argsort(indices, kind="stable")
    ordered = indices[order]
    buffer = np.empty((len(indices), *row_shape), array.dtype)
    raw = memoryview(buffer.reshape(len(indices), -1).view(np.uint8)).cast("B")
    fd = os.open(array.filename, os.O_RDONLY)
    try:
        for at, first, count in _runs(ordered):
            _pread_into(fd, raw[at * row_bytes:(at + count) * row_bytes], array.offset + first * row_bytes)
    finally:
        os.close(fd)
    out = np.empty_like(buffer)
    out[order] = buffer
    return out


def read_span(array: np.memmap, first: int, count: int) -> np.ndarray:
    """``array[first:first + count]`` read from the file."""
    row_shape = array.shape[1:]
    out = np.empty((count, *row_shape), array.dtype)
    size = out.nbytes // max(1, count)
    fd = os.open(array.filename, os.O_RDONLY)
    try:
        _pread_into(fd, memoryview(out.reshape(-1).view(np.uint8)).cast("B"), array.offset + first * size)
    finally:
        os.close(fd)
    return out


class DiskRows:
    """A stored array that reads the rows it is indexed with from its file.

    Indexing an ``np.memmap`` maps every page it touches, and the kernel's
    read-ahead around them, into the process: sampling rows spread over a 4 GB
    file makes most of the file resident. This reads just the rows.
    """

    def __init__(self, array: np.memmap) -> None:
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return read_rows(self.array, np.array([key]))[0]
        return read_rows(self.array, np.arange(len(self.array))[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)


def select_rows(arrays: Mapping[str, ArrayLike], names: str | Sequence[str]) -> Any:
    """``select`` for code that indexes rows (``a[indices]``, ``len(a)``, ``a.shape``, ``np.asarray(a)``),
    reading them from the file; None for a missing name, variable-length sequences and image folders."""
    try:
        picked = select(arrays, names)
    except KeyError:
        return None
    if isinstance(picked, (SequenceArray, ImageFolder)):
        return None
    if isinstance(picked, TableView) and file_backed(picked.table):
        return TableView(DiskRows(picked.table), picked.index)  # type: ignore[arg-type]
    if isinstance(picked, ColumnStack):
        return ColumnStack(tuple(DiskRows(c) if file_backed(c) else c for c in picked.columns))  # type: ignore[misc]
    return DiskRows(picked) if file_backed(picked) else picked  # type: ignore[arg-type]


def take(array: ArrayLike, indices: np.ndarray) -> np.ndarray:
    """Rows ``indices`` of a dense array or a column stack, as a new in-memory array."""
    if isinstance(array, DiskRows):
        return read_rows(array.array, indices)
    if isinstance(array, ColumnStack):
        return np.stack([take(column, indices) for column in array.columns], axis=-1)
    if isinstance(array, TableView):
        picked = take(array.table, indices)[:, list(array.index)]
        return picked[:, 0] if array.squeeze else picked
    if isinstance(array, (SequenceArray, ImageFolder)):
        raise TypeError(f"take() reads dense arrays; use take_steps/pad_sequences for {type(array).__name__}")
    if file_backed(array):
        return read_rows(array, indices)
    return np.asarray(array[indices])


def take_steps(sequences: SequenceArray, indices: np.ndarray) -> list[np.ndarray]:
    """The steps of each chosen sample, each ``(length, *features)``."""
    values = sequences.values
    from_file = file_backed(values)
    out = []
    for i in np.asarray(indices, dtype=np.int64).tolist():
        start, stop = int(sequences.offsets[i]), int(sequences.offsets[i + 1])
        out.append(read_span(values, start, stop - start) if from_file else np.array(values[start:stop]))
    return out


def pad_sequences(steps: list[np.ndarray], dtype: np.dtype | str = "float32", value: float = 0.0) -> np.ndarray:
    """``(batch, longest, *features)``: each sample's steps, then ``value`` up to the longest in the batch."""
    longest = max(len(s) for s in steps)
    out = np.full((len(steps), longest, *steps[0].shape[1:]), value, dtype=dtype)
    for row, sample in enumerate(steps):
        out[row, :len(sample)] = sample
    return out


def chunks(indices: np.ndarray, row_bytes: int, budget: int = 32 * 1024 * 1024) -> Iterator[np.ndarray]:
    """``indices`` cut into pieces of about ``budget`` bytes of rows each."""
    step = max(1, budget // max(1, row_bytes))
    for start in range(0, len(indices), step):
        yield indices[start:start + step]


def row_bytes(array: ArrayLike) -> int:
    shape = [d for d in array.shape[1:] if d is not None]
    return max(1, np.dtype(array.dtype).itemsize * int(np.prod(shape, dtype=np.int64)))
