"""Reading .npz files safely: never unpickle, describe every array."""

import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class DatasetFileError(ValueError):
    """The file is not a usable dataset; the message says why, for the client."""


def describe_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()}


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array, refusing pickled (object) arrays and corrupt archives."""
    if not zipfile.is_zipfile(path):
        raise DatasetFileError("not a valid .npz file: a .npz is a zip archive of .npy arrays (numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DatasetFileError("expected a .npz archive of named arrays, got a single .npy array")
            arrays = {name: archive[name] for name in archive.files}
    except DatasetFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DatasetFileError("the file holds pickled object arrays; only plain numeric arrays are accepted") from exc
        raise DatasetFileError(f"not a valid .npz file: {exc}") from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DatasetFileError(f"not a valid .npz file: {exc}") from exc
    if not arrays:
        raise DatasetFileError("the archive holds no arrays")
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise DatasetFileError(f"array '{name}' has dtype {array.dtype}; only numeric arrays are accepted")
        if array.ndim == 0:
            raise DatasetFileError(f"array '{name}' is a scalar; expected one row per sample")
    return arrays
