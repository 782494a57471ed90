"""Caps applied while unpacking an upload, so a small file cannot exhaust the disk or memory."""

from dataclasses import dataclass

from datastore.errors import DatasetFileError


@dataclass(frozen=True)
class Limits:
    # Everything an upload may unpack to on disk (arrays of a zip, columns of a CSV).
    max_unpacked_bytes: int = 8 * 1024**3
    # Members of one zip archive (an image folder holds one file per sample).
    max_members: int = 200_000
    # Pixels of one image (width x height): PIL's decompression-bomb check, tightened.
    max_image_pixels: int = 40_000_000
    # Arrays of one .npz: far below the process's descriptor limit, since every stored
    # array is a file that a reader maps (one descriptor each while it is open).
    max_npz_members: int = 1_000
    # Columns of one CSV, checked on the header line before any row is read.
    max_csv_columns: int = 4_096


class Budget:
    """Bytes actually written while unpacking, counted against ``Limits.max_unpacked_bytes``.

    Archive headers can lie about sizes; this counts what really comes out.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, count: int, what: str) -> None:
        self.spent += count
        if self.spent > self.limit:
            raise DatasetFileError(
                f"{what} unpacks to more than the limit of {self.limit} bytes (a zip bomb?)", too_large=True
            )
