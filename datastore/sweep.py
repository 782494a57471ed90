"""Collect what interrupted uploads leave in the artifact store.

An upload streams to ``uploads/<name>.part``, is unpacked into
``uploads/<name>.staging/`` and renamed to ``datasets/<sha256>/`` just before
its row commits. A process killed on the way leaves the part file, the staging
folder, or (between the rename and the commit) a dataset folder without a row.
``sweep`` removes what has not been touched for the grace period: an upload in
progress writes to its files, so the newest time of the pair is its age. A
dataset folder goes only if the caller's ``claim`` for its sha256 says that no
row references it; the folder is removed while the claim (a lock) is held.
"""

import logging
import os
import re
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from datastore.artifacts import ArtifactStore

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".part", ".staging")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Claim = Callable[[str], AbstractContextManager[bool]]


@dataclass
class Swept:
    uploads: list[str]  # names under uploads/
    datasets: list[str]  # sha256 of the dataset folders removed

    def __bool__(self) -> bool:
        return bool(self.uploads or self.datasets)


def newest_change(path: Path) -> float:
    """The latest modification time of ``path`` and, for a folder, of anything inside it."""
    newest = _own_change(path)  # inf when gone meanwhile: nothing to sweep
    if newest != float("inf") and path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def _own_change(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")


def sweep(store: ArtifactStore, grace_s: float, claim: Claim, referenced: Callable[[], Collection[str]], *,
          now: float | None = None) -> Swept:
    """Remove stale upload files and dataset folders that no row references; returns what went.

    ``referenced()`` gives every sha256 that rows reference (one query, to pass over most folders);
    ``claim`` decides each remaining folder under its lock. A dataset folder's age is its own time,
    which the upload sets when it renames the folder into place."""
    cutoff = (time.time() if now is None else now) - grace_s
    swept = Swept([], [])
    uploads = store.root / "uploads"
    groups: dict[str, list[Path]] = {}
    for entry in uploads.iterdir() if uploads.is_dir() else ():
        if entry.suffix in UPLOAD_SUFFIXES:
            groups.setdefault(entry.stem, []).append(entry)
    for group in groups.values():
        if max(newest_change(p) for p in group) < cutoff:
            for path in group:
                store.remove(path)
                swept.uploads.append(path.name)
    datasets = store.root / "datasets"
    candidates = [f for f in (datasets.iterdir() if datasets.is_dir() else ()) if _SHA256.match(f.name) and f.is_dir()]
    in_use = set(referenced()) if candidates else set()
    for folder in candidates:
        if folder.name in in_use or _own_change(folder) >= cutoff:
            continue
        with claim(folder.name) as free:
            if free:
                store.remove(folder)
                swept.datasets.append(folder.name)
    if swept:
        log.warning("swept %d stale upload file(s) %s and %d dataset folder(s) without a row %s",
                    len(swept.uploads), swept.uploads, len(swept.datasets), swept.datasets)
    return swept
