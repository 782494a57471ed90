"""The sweep of what interrupted uploads leave: stale part files, staging folders, folders without a row."""

import os
import time
from contextlib import contextmanager
from pathlib import Path

from datastore.artifacts import ArtifactStore
from datastore.sweep import sweep

HOUR = 3600.0
OLD = time.time() - 2 * HOUR


def aged(path: Path, when: float = OLD) -> Path:
    os.utime(path, (when, when))
    return path


def make_file(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


class Claims:
    """Stands in for the database's rule: ``referenced`` are the sha256 that rows reference."""

    def __init__(self, referenced: set[str]) -> None:
        self.referenced, self.claimed = referenced, []

    @contextmanager
    def claim(self, sha256: str):
        self.claimed.append(sha256)
        yield sha256 not in self.referenced


def run(store: ArtifactStore, claims: Claims):
    return sweep(store, HOUR, claims.claim, lambda: claims.referenced)


def test_stale_part_files_and_staging_folders_go_fresh_ones_stay(tmp_path):
    store = ArtifactStore(tmp_path)
    uploads = tmp_path / "uploads"
    aged(make_file(uploads / "dead.part"))
    aged(make_file(uploads / "dead.staging" / "a000.npy"))
    aged(uploads / "dead.staging")
    make_file(uploads / "live.part")  # being written
    aged(make_file(uploads / "slow.part"))  # streamed long ago, its staging folder is being written
    make_file(uploads / "slow.staging" / "a000.npy")
    aged(uploads / "slow.staging")
    aged(make_file(uploads / "keep.txt"))  # not an upload file

    swept = run(store, Claims(set()))

    assert sorted(swept.uploads) == ["dead.part", "dead.staging"]
    assert sorted(p.name for p in uploads.iterdir()) == ["keep.txt", "live.part", "slow.part", "slow.staging"]


def test_a_dataset_folder_goes_only_when_old_and_no_row_references_it(tmp_path):
    store = ArtifactStore(tmp_path)
    orphan, owned, fresh = "a" * 64, "b" * 64, "c" * 64
    for sha in (orphan, owned, fresh):
        make_file(tmp_path / "datasets" / sha / "manifest.json")
    aged(tmp_path / "datasets" / orphan)
    aged(tmp_path / "datasets" / owned)
    aged(make_file(tmp_path / "datasets" / f"{'d' * 64}.npz"))  # a dataset stored before folders: a file
    claims = Claims({owned})

    swept = run(store, claims)

    assert swept.datasets == [orphan] and claims.claimed == [orphan]
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == [owned, fresh, f"{'d' * 64}.npz"]


def test_a_folder_whose_claim_finds_a_row_is_kept(tmp_path):
    """The row committed between the cheap listing and the claim (an upload holding the lock)."""
    store = ArtifactStore(tmp_path)
    sha = "e" * 64
    make_file(tmp_path / "datasets" / sha / "manifest.json")
    aged(tmp_path / "datasets" / sha)
    claims = Claims(set())
    claims.claim = lambda s: Claims({s}).claim(s)  # the listing saw no row; the locked check does

    assert not run(store, claims) and (tmp_path / "datasets" / sha).is_dir()


def test_an_empty_store_sweeps_nothing(tmp_path):
    assert not run(ArtifactStore(tmp_path), Claims(set()))
