"""``.npz`` uploads: named numeric arrays, never unpickled.

Each member is unpacked to its own ``.npy`` file (header checked against the
member's size first, then the file; rewritten in C order if needed), one at a
time. At most ``Limits.max_npz_members`` arrays, counted from the zip's
directory before any member is read. A pair ``<name>_values`` + ``<name>_lengths``
becomes one variable-length sequence array ``<name>``: ``values`` holds every
sample's steps concatenated, shape ``(total_steps, *features)``, and
``lengths[i]`` the number of steps of sample ``i``.
"""

import re
import zipfile
from pathlib import Path

import numpy as np

from datastore.archive import ZIP_ERRORS, checked_members, extract, open_zip
from datastore.errors import DatasetFileError
from datastore.layout import DatasetWriter
from datastore.limits import Budget, Limits
from datastore.npy import NpyHeader, check_npy, check_size, open_npy, parse_header, rewrite_c_order

__all__ = ["DatasetFileError", "ingest_npz", "load_npz"]

_PAIR = re.compile(r"^x(|_.*)$")


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` whole (datasets stored before the folder layout)."""
    if not zipfile.is_zipfile(path):
        raise DatasetFileError("not a valid .npz file: a .npz is a zip archive of .npy arrays (numpy.savez)")
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def ingest_npz(source: Path, writer: DatasetWriter, limits: Limits) -> None:
    """Unpack and check every member, one at a time: no array stays open (mapped, holding a descriptor)
    past its own check, so the member count costs disk, not descriptors."""
    headers: dict[str, NpyHeader] = {}
    what = ".npz file (a zip archive of .npy arrays, as numpy.savez writes)"
    with open_zip(source, what, max_members=limits.max_npz_members, unit="arrays") as archive:
        budget = Budget(limits.max_unpacked_bytes)
        for info, path in checked_members(archive, limits):
            loc = ("file", info.filename)
            if len(path.parts) != 1 or path.suffix != ".npy":
                raise DatasetFileError(
                    f"the member '{info.filename}' is not an array: a .npz holds only <name>.npy files", loc
                )
            name = path.stem
            if name in headers:
                raise DatasetFileError(f"the archive holds the array '{name}' twice", loc)
            _check_member_header(archive, info, name)  # before unpacking: a lying header costs nothing
            dest = writer.new_file()
            extract(archive, info, dest, budget)
            header = check_npy(dest, name, loc)
            if header.fortran and len(header.shape) > 1:
                fixed = writer.new_file()
                rewrite_c_order(open_npy(dest, name, loc), fixed)
                dest.unlink()
                dest = fixed
            headers[name] = header
            writer.add_dense(name, dest)
    if not headers:
        raise DatasetFileError("the archive holds no arrays")
    _check_pairs(_sequences(headers, writer))


def _check_member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """The member's header, checked against the size the archive declares for it."""
    loc = ("file", info.filename)
    try:
        with archive.open(info) as member:
            header = parse_header(member, name, loc)
    except ZIP_ERRORS as exc:
        raise DatasetFileError(f"the archive member '{info.filename}' is corrupt: {exc}", loc) from exc
    check_size(header, info.file_size, name, loc)


def _sequences(headers: dict[str, NpyHeader], writer: DatasetWriter) -> dict[str, int]:
    """Turn each ``<name>_values`` + ``<name>_lengths`` pair into a sequence; returns samples per array."""
    samples = {name: h.shape[0] for name, h in headers.items()}
    for name in [n for n in headers if n.endswith("_values")]:
        base = name.removesuffix("_values")
        lengths_name = f"{base}_lengths"
        if lengths_name not in headers:
            continue
        if base in headers:
            raise DatasetFileError(f"the archive has both '{base}' and the sequence pair '{name}'/'{lengths_name}'")
        values, lengths_header = headers[name], headers[lengths_name]
        if len(lengths_header.shape) != 1 or lengths_header.dtype.kind not in "iu":
            raise DatasetFileError(f"'{lengths_name}' must be a 1-D integer array (steps per sample); "
                                   f"it has shape {list(lengths_header.shape)} and dtype {lengths_header.dtype}")
        entry_values, entry_lengths = writer.arrays[name]["file"], writer.arrays[lengths_name]["file"]
        lengths = np.load(writer.directory / entry_lengths, mmap_mode="r", allow_pickle=False)
        if lengths.min() < 1:
            first = int(np.argmax(lengths < 1))
            raise DatasetFileError(f"'{lengths_name}[{first}]' is {int(lengths[first])}: "
                                   "every sequence needs at least one step")
        total = int(lengths.sum(dtype=np.int64))
        del lengths  # unmapped: one array open at a time
        if total != values.shape[0]:
            raise DatasetFileError(
                f"'{lengths_name}' adds up to {total} steps but '{name}' holds {values.shape[0]}: they must be equal"
            )
        writer.remove(name)
        writer.remove(lengths_name)
        writer.add_sequence(base, writer.directory / entry_values, writer.directory / entry_lengths)
        del samples[name], samples[lengths_name]
        samples[base] = lengths_header.shape[0]
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
