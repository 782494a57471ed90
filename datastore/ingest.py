"""From an uploaded file to a stored dataset folder and its description.

The caller streams the upload to disk, then calls ``ingest`` with a fresh
staging folder; on success the folder holds the dataset in its final layout
(see ``datastore.layout``) and can be renamed into place. On a
``DatasetFileError`` the caller removes the staging folder: nothing of a
refused upload is kept.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datastore.csvfile import ingest_csv
from datastore.describe import array_summary, describe
from datastore.images import ingest_images
from datastore.layout import DatasetWriter
from datastore.limits import Limits
from datastore.npz import ingest_npz
from datastore.reader import open_directory

# File suffix -> stored format.
FORMATS = {".npz": "npz", ".csv": "csv", ".zip": "images"}


@dataclass(frozen=True)
class Ingested:
    format: str
    description: dict[str, Any]

    @property
    def arrays(self) -> dict[str, dict[str, Any]]:
        return array_summary(self.description)


def ingest(source: Path, suffix: str, staging: Path, limits: Limits) -> Ingested:
    """Check ``source`` and write it to ``staging`` as a dataset folder.

    Raises:
        DatasetFileError: the file is not a usable dataset (the message says why).
    """
    fmt = FORMATS[suffix]
    writer = DatasetWriter(staging, fmt)
    known: dict[str, dict[str, Any]] = {}
    if fmt == "npz":
        ingest_npz(source, writer, limits)
    elif fmt == "csv":
        known = ingest_csv(source, writer, limits)
    else:
        known = ingest_images(source, writer, limits)
    writer.finish()
    dataset = open_directory(staging)
    columns = list(known) if fmt == "csv" else None
    return Ingested(fmt, describe(dataset, classes=writer.classes, columns=columns, known=known))
