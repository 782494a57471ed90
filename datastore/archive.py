"""Zip archives from clients: every member checked before a byte is unpacked.

Refused: paths that leave the archive (``../``, absolute, drive letters),
symbolic links, encrypted members, more members or more unpacked bytes than
the limits allow (the count read from the zip's end record, before its
directory is parsed). Sizes declared in the headers are checked first; the bytes
really unpacked are counted too, since a header can lie.
"""

import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from datastore.errors import DatasetFileError
from datastore.limits import Budget, Limits

CHUNK = 1024 * 1024
# What a broken or hostile archive raises inside zipfile while reading.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


# Bytes of central directory allowed per member: a fixed 46-byte record plus a name and extras.
_DIRECTORY_BYTES_PER_MEMBER = 1024


@contextmanager
def open_zip(path: Path, what: str, *, max_members: int, unit: str = "members") -> Iterator[zipfile.ZipFile]:
    """Open ``path`` as a zip; a corrupt archive becomes a DatasetFileError naming ``what``.

    The member count (and the size of the central directory, which ``zipfile`` reads whole) is
    checked from the end record before the directory is parsed, so a huge member count costs nothing.
    """
    if not zipfile.is_zipfile(path):
        raise DatasetFileError(f"not a valid {what}: the file is not a zip archive (truncated or corrupt?)")
    _check_directory(path, max_members, unit)
    try:
        with zipfile.ZipFile(path) as archive:
            if len(archive.infolist()) > max_members:  # the end record undercounted
                raise _too_many(len(archive.infolist()), max_members, unit)
            yield archive
    except ZIP_ERRORS as exc:
        raise DatasetFileError(f"not a valid {what}: {exc}") from exc


def _too_many(count: int, limit: int, unit: str) -> DatasetFileError:
    return DatasetFileError(f"the archive holds {count} {unit}, more than the limit of {limit}", too_large=True)


def _check_directory(path: Path, max_members: int, unit: str) -> None:
    with path.open("rb") as f:
        end = zipfile._EndRecData(f)  # type: ignore[attr-defined]  # the parser zipfile itself uses
    if end is None:
        return  # zipfile.ZipFile refuses it below
    entries, directory_bytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > max_members:
        raise _too_many(entries, max_members, unit)
    if directory_bytes > max_members * _DIRECTORY_BYTES_PER_MEMBER:
        raise DatasetFileError(
            f"the archive's directory takes {directory_bytes} bytes, more than {max_members} {unit} can need",
            too_large=True,
        )


def member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's path, refused if it could point outside the folder it is unpacked into."""
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DatasetFileError(f"the archive member '{name}' points outside the archive", ("file", name))
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DatasetFileError(f"the archive member '{name}' is a symbolic link; links are not accepted",
                               ("file", name))
    if info.flag_bits & 0x1:
        raise DatasetFileError(f"the archive member '{name}' is encrypted", ("file", name))
    return path


def checked_members(archive: zipfile.ZipFile, limits: Limits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The archive's files (folders left out), each with its checked path."""
    infos = archive.infolist()
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_unpacked_bytes:
        raise DatasetFileError(
            f"the archive unpacks to {declared} bytes, "
            f"more than the limit of {limits.max_unpacked_bytes} (a zip bomb?)",
            too_large=True,
        )
    members = [(info, member_path(info)) for info in infos]
    return [(info, path) for info, path in members if not info.is_dir()]


def extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: Budget) -> None:
    """Unpack one member to ``dest`` in chunks, counting the bytes against the budget."""
    try:
        with archive.open(info) as source, dest.open("wb") as sink:
            while chunk := source.read(CHUNK):
                budget.spend(len(chunk), "the archive")
                sink.write(chunk)
    except ZIP_ERRORS as exc:
        raise DatasetFileError(f"the archive member '{info.filename}' is corrupt: {exc}",
                               ("file", info.filename)) from exc

