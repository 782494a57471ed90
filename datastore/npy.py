"""``.npy`` files opened without trusting them: header checked, never unpickled, memory-mapped.

Every stored array is an uncompressed, C-ordered ``.npy`` file, so the worker can
read any rows of it without loading the rest.
"""

import math
from pathlib import Path

import numpy as np

from datastore.errors import DatasetFileError

NUMERIC_KINDS = "biuf"
_ROWS_PER_COPY = 64 * 1024 * 1024  # bytes per chunk when rewriting in C order


def read_header(path: Path, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and data offset of a ``.npy`` file."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise DatasetFileError(f"array '{name}' uses .npy format version {version}, which is not accepted")
            return shape, fortran, dtype, f.tell()
    except DatasetFileError:
        raise
    except (ValueError, EOFError, SyntaxError) as exc:
        raise DatasetFileError(f"array '{name}' is not a valid .npy array: {exc}") from exc


def open_npy(path: Path, name: str) -> np.memmap:
    """Check and memory-map one array; refuses object (pickled), non-numeric, empty and truncated arrays."""
    shape, fortran, dtype, offset = read_header(path, name)
    if dtype.hasobject:
        raise DatasetFileError(
            f"array '{name}' holds pickled Python objects; only plain numeric arrays are accepted "
            "(variable-length sequences go in as '<name>_values' and '<name>_lengths', see the README)"
        )
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise DatasetFileError(f"array '{name}' has dtype {dtype}; only numeric arrays are accepted")
    if not shape:
        raise DatasetFileError(f"array '{name}' is a scalar; expected one row per sample")
    if 0 in shape:
        raise DatasetFileError(f"array '{name}' is empty (shape {list(shape)})")
    expected = offset + math.prod(shape) * dtype.itemsize  # Python ints: a hostile shape cannot overflow
    actual = path.stat().st_size
    if actual < expected:
        raise DatasetFileError(f"array '{name}' is truncated: {actual} bytes where shape {list(shape)} needs {expected}")
    array = np.memmap(path, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C", offset=offset)
    return array


def rewrite_c_order(array: np.memmap, dest: Path) -> np.memmap:
    """Copy a Fortran-ordered array (``np.save(a.T)``) to C order, chunk by chunk, so rows are contiguous."""
    out = np.lib.format.open_memmap(dest, mode="w+", dtype=array.dtype.newbyteorder("="), shape=array.shape)
    rows = max(1, _ROWS_PER_COPY // max(1, out[0].nbytes))
    for start in range(0, len(array), rows):
        out[start:start + rows] = array[start:start + rows]
    out.flush()
    del out
    return np.load(dest, mmap_mode="r")
