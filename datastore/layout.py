"""How a dataset lies on disk: a folder of uncompressed ``.npy`` files and a manifest.

``datasets/<sha256 of the uploaded bytes>/``::

    manifest.json    {"version": 1, "format": ..., "arrays": {name: entry}, "classes": [...] | null,
                      "categories": {column: [...]}}
    a000.npy ...     one file per stored array; names come from the service, never from the client
    images/000000.png ...   image folders: the images as uploaded, renamed by sample index

Manifest entries by kind::

    {"kind": "dense", "file": "a000.npy"}
    {"kind": ArrayKind.sequence.value, "values": "a001.npy", "lengths": "a002.npy"}   # x_values + x_lengths
    {"kind": ArrayKind.images.value, "files": "images.txt"}                           # one relative path per line
    {"kind": "column", "file": "a000.npy", "index": 3}                  # CSV: column 3 of the table

A folder is written once under a temporary name and renamed into place, so a
reader never sees half a dataset; nothing in it changes afterwards.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from datastore.kinds import STORED_COLUMN, ArrayKind

MANIFEST = "manifest.json"
VERSION = 1


class DatasetWriter:
    """Builds one dataset folder (the staging folder of an upload)."""

    def __init__(self, directory: Path, fmt: str) -> None:
        self.directory = directory
        self.format = fmt
        self.arrays: dict[str, dict[str, Any]] = {}
        self.classes: list[str] | None = None
        self.categories: dict[str, list[str]] = {}
        self._files = 0
        directory.mkdir(parents=True, exist_ok=True)

    def new_file(self, suffix: str = ".npy") -> Path:
        """A fresh file name inside the folder."""
        path = self.directory / f"a{self._files:03d}{suffix}"
        self._files += 1
        return path

    def new_array(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.memmap:
        """A writable memory-mapped ``.npy`` registered as a dense array."""
        path = self.new_file()
        self.arrays[name] = {"kind": ArrayKind.dense.value, "file": path.name}
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def new_table(self, shape: tuple[int, int], names: list[str]) -> np.memmap:
        """A writable float64 table whose columns are registered as arrays of their own names."""
        path = self.new_file()
        for index, name in enumerate(names):
            self.arrays[name] = {"kind": STORED_COLUMN, "file": path.name, "index": index}
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)

    def add_dense(self, name: str, path: Path) -> None:
        self.arrays[name] = {"kind": ArrayKind.dense.value, "file": path.name}

    def add_sequence(self, name: str, values: Path, lengths: Path) -> None:
        self.arrays[name] = {"kind": ArrayKind.sequence.value, "values": values.name, "lengths": lengths.name}

    def add_images(self, name: str, files: list[str]) -> None:
        listing = self.directory / "images.txt"
        listing.write_text("".join(f"{f}\n" for f in files), encoding="utf-8")
        self.arrays[name] = {"kind": ArrayKind.images.value, "files": listing.name}

    def remove(self, name: str) -> None:
        del self.arrays[name]

    def finish(self) -> dict[str, Any]:
        manifest = {"version": VERSION, "format": self.format, "arrays": self.arrays, "classes": self.classes,
                    "categories": self.categories}
        (self.directory / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
