"""``.npz`` uploads: named numeric arrays, never unpickled.

Each member is unpacked to its own ``.npy`` file (checked, memory-mapped,
rewritten in C order if needed). A pair ``<name>_values`` + ``<name>_lengths``
becomes one variable-length sequence array ``<name>``: ``values`` holds every
sample's steps concatenated, shape ``(total_steps, *features)``, and
``lengths[i]`` the number of steps of sample ``i``.
"""

import re
import zipfile
from pathlib import Path

import numpy as np

from datastore.archive import checked_members, extract, open_zip
from datastore.errors import DatasetFileError
from datastore.layout import DatasetWriter
from datastore.limits import Budget, Limits
from datastore.npy import open_npy, rewrite_c_order

__all__ = ["DatasetFileError", "ingest_npz", "load_npz"]

_PAIR = re.compile(r"^x(|_.*)$")


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` whole (datasets stored before the folder layout)."""
    if not zipfile.is_zipfile(path):
        raise DatasetFileError("not a valid .npz file: a .npz is a zip archive of .npy arrays (numpy.savez)")
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def ingest_npz(source: Path, writer: DatasetWriter, limits: Limits) -> None:
    arrays: dict[str, np.ndarray] = {}
    with open_zip(source, ".npz file (a zip archive of .npy arrays, as numpy.savez writes)") as archive:
        budget = Budget(limits.max_unpacked_bytes)
        for info, path in checked_members(archive, limits):
            if len(path.parts) != 1 or path.suffix != ".npy":
                raise DatasetFileError(
                    f"the member '{info.filename}' is not an array: a .npz holds only <name>.npy files", ("file", info.filename)
                )
            name = path.stem
            dest = writer.new_file()
            extract(archive, info, dest, budget)
            array = open_npy(dest, name)
            if array.ndim > 1 and not array.flags.c_contiguous:
                fixed = writer.new_file()
                array = rewrite_c_order(array, fixed)
                dest.unlink()
                dest = fixed
            arrays[name] = array
            writer.add_dense(name, dest)
    if not arrays:
        raise DatasetFileError("the archive holds no arrays")
    _check_pairs(_sequences(arrays, writer))


def _sequences(arrays: dict[str, np.ndarray], writer: DatasetWriter) -> dict[str, int]:
    """Turn each ``<name>_values`` + ``<name>_lengths`` pair into a sequence; returns samples per array."""
    samples = {name: len(a) for name, a in arrays.items()}
    for name in [n for n in arrays if n.endswith("_values")]:
        base = name.removesuffix("_values")
        lengths_name = f"{base}_lengths"
        if lengths_name not in arrays:
            continue
        if base in arrays:
            raise DatasetFileError(f"the archive has both '{base}' and the sequence pair '{name}'/'{lengths_name}'")
        values, lengths = arrays[name], np.asarray(arrays[lengths_name])
        if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
            raise DatasetFileError(f"'{lengths_name}' must be a 1-D integer array (steps per sample); "
                                   f"it has shape {list(lengths.shape)} and dtype {lengths.dtype}")
        if lengths.min() < 1:
            first = int(np.argmax(lengths < 1))
            raise DatasetFileError(f"'{lengths_name}[{first}]' is {int(lengths[first])}: every sequence needs at least one step")
        total = int(lengths.sum(dtype=np.int64))
        if total != len(values):
            raise DatasetFileError(
                f"'{lengths_name}' adds up to {total} steps but '{name}' holds {len(values)}: they must be equal"
            )
        if values.dtype.kind not in "biuf":
            raise DatasetFileError(f"'{name}' has dtype {values.dtype}; only numeric arrays are accepted")
        entry_values, entry_lengths = writer.arrays[name]["file"], writer.arrays[lengths_name]["file"]
        writer.remove(name)
        writer.remove(lengths_name)
        writer.add_sequence(base, writer.directory / entry_values, writer.directory / entry_lengths)
        del samples[name], samples[lengths_name]
        samples[base] = len(lengths)
    return samples


def _check_pairs(samples: dict[str, int]) -> None:
    """``x``/``y`` (and ``x_train``/``y_train``, ...) describe the same samples, so their lengths must agree."""
    for name, count in samples.items():
        match = _PAIR.match(name)
        if not match:
            continue
        partner = f"y{match.group(1)}"
        if partner in samples and samples[partner] != count:
            raise DatasetFileError(
                f"arrays '{name}' and '{partner}' differ in length: '{name}' has {count} samples, '{partner}' has "
                f"{samples[partner]}"
            )
