"""``.npy`` files opened without trusting them: header checked, never unpickled, memory-mapped.

Every stored array is an uncompressed, C-ordered ``.npy`` file, so the worker can
read any rows of it without loading the rest.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from datastore.errors import DatasetFileError

NUMERIC_KINDS = "biuf"
_ROWS_PER_COPY = 64 * 1024 * 1024  # bytes per chunk when rewriting in C order
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int  # where the data starts

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: a hostile shape cannot overflow


def parse_header(f: BinaryIO, name: str, loc: Sequence[str] = ("file",)) -> NpyHeader:
    """The header of a ``.npy`` stream (a file or an archive member), checked: numeric dtype, a shape of
    positive dimensions whose size fits in int64. Reads only the header."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise DatasetFileError(f"array '{name}' uses .npy format version {version}, which is not accepted", loc)
        header = NpyHeader(tuple(shape), bool(fortran), dtype, f.tell())
    except DatasetFileError:
        raise
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError) as exc:
        raise DatasetFileError(f"array '{name}' is not a valid .npy array: {exc}", loc) from exc
    _check(header, name, loc)
    return header


def _check(header: NpyHeader, name: str, loc: Sequence[str]) -> None:
    shape, dtype = header.shape, header.dtype
    if dtype.hasobject:
        raise DatasetFileError(
            f"array '{name}' holds pickled Python objects; only plain numeric arrays are accepted "
            "(variable-length sequences go in as '<name>_values' and '<name>_lengths', see the README)", loc,
        )
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise DatasetFileError(f"array '{name}' has dtype {dtype}; only numeric arrays are accepted", loc)
    if not shape:
        raise DatasetFileError(f"array '{name}' is a scalar; expected one row per sample", loc)
    if any(d < 0 for d in shape):
        raise DatasetFileError(f"array '{name}' declares a negative dimension (shape {list(shape)})", loc)
    if 0 in shape:
        raise DatasetFileError(f"array '{name}' is empty (shape {list(shape)})", loc)
    if header.data_bytes > _INT64_MAX:
        raise DatasetFileError(f"array '{name}' declares shape {list(shape)}, too large to address", loc)


def read_header(path: Path, name: str, loc: Sequence[str] = ("file",)) -> NpyHeader:
    """The checked header of a ``.npy`` file."""
    with path.open("rb") as f:
        return parse_header(f, name, loc)


def check_size(header: NpyHeader, actual: int, name: str, loc: Sequence[str] = ("file",)) -> None:
    """Refuse a header that needs more bytes than the file (or archive member) really holds."""
    expected = header.offset + header.data_bytes
    if actual < expected:
        raise DatasetFileError(
            f"array '{name}' is truncated: {actual} bytes where shape {list(header.shape)} needs {expected}", loc
        )


def check_npy(path: Path, name: str, loc: Sequence[str] = ("file",)) -> NpyHeader:
    """Check a ``.npy`` file without mapping it: header, dtype, shape against the real size."""
    header = read_header(path, name, loc)
    check_size(header, path.stat().st_size, name, loc)
    return header


def open_npy(path: Path, name: str, loc: Sequence[str] = ("file",)) -> np.memmap:
    """Check and memory-map one array; refuses object (pickled), non-numeric, empty and truncated arrays."""
    header = check_npy(path, name, loc)
    return np.memmap(path, dtype=header.dtype, mode="r", shape=header.shape, order="F" if header.fortran else "C",
                     offset=header.offset)


def rewrite_c_order(array: np.memmap, dest: Path) -> None:
    """Copy a Fortran-ordered array (``np.save(a.T)``) to C order, chunk by chunk, so rows are contiguous."""
    out = np.lib.format.open_memmap(dest, mode="w+", dtype=array.dtype.newbyteorder("="), shape=array.shape)
    rows = max(1, _ROWS_PER_COPY // max(1, out[0].nbytes))
    for start in range(0, len(array), rows):
        out[start:start + rows] = array[start:start + rows]
    out.flush()
    del out
