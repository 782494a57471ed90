"""A dataset's rows and files stay together, against committed rows of two tenants on the real app.

Stored bytes are shared by content (``datasets/<sha256>/``), rows are per tenant: a delete by one
tenant racing an upload of the same bytes by another must never leave a row without its files,
and what a crash leaves (a folder without a row, part files) is swept.
"""

import io
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from datastore.artifacts import ArtifactStore
from models.tables import Dataset
from tests.api.committed_app import CommittedApp, committed_app

RACES = 200


def rows(world: CommittedApp) -> list[Dataset]:
    with world.factory() as session:
        return list(session.scalars(select(Dataset)))


def folder(world: CommittedApp, sha256: str) -> Path:
    return world.settings.artifacts / "datasets" / sha256


@pytest.fixture(scope="module")
def world(tmp_path_factory, validator_pool) -> Iterator[CommittedApp]:
    with committed_app("lifecycle", tmp_path_factory.mktemp("lifecycle"), validator_pool, api_key_cache_s=60) as world:
        yield world


def npz(seed: int) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(seed).normal(size=(20, 3)).astype("float32"), y=np.arange(20) % 2)
    return buffer.getvalue()


def upload(client: TestClient, content: bytes):
    return client.post("/v1/datasets", files={"file": ("d.npz", content, "application/octet-stream")})


def assert_every_row_has_its_files(world: CommittedApp) -> None:
    for row in rows(world):
        manifest = world.settings.artifacts / row.path / "manifest.json"
        assert manifest.is_file(), f"{row.id} ({row.tenant}) lost its files"


def test_shared_bytes_stay_until_the_last_tenant_deletes_them(world: CommittedApp):
    content = npz(10_000)
    first, second = upload(world.a, content).json(), upload(world.b, content).json()
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]

    assert world.a.delete(f"/v1/datasets/{first['id']}").status_code == 204
    assert folder(world, first["sha256"]).is_dir() and world.b.get(f"/v1/datasets/{second['id']}").status_code == 200

    assert world.b.delete(f"/v1/datasets/{second['id']}").status_code == 204
    assert not folder(world, first["sha256"]).exists()


def test_a_delete_racing_another_tenants_upload_of_the_same_bytes_never_loses_files(world: CommittedApp):
    """Used to leave a row without files about once in 160 tries."""
    rng = random.Random(0)
    orders = {"upload reused the folder": 0, "delete went first": 0}
    for attempt in range(RACES):
        content = npz(attempt)
        owned = upload(world.a, content).json()
        before = folder(world, owned["sha256"]).stat().st_ino
        start = threading.Barrier(2)
        results: dict[str, int] = {}

        # This iteration's values bound as defaults: the threads end before the next iteration anyway.
        def delete(dataset_id: str = owned["id"], pause: float = rng.random() * 0.004, start=start,
                   results=results) -> None:
            start.wait()
            time.sleep(pause)
            results["delete"] = world.a.delete(f"/v1/datasets/{dataset_id}").status_code

        def reupload(pause: float = rng.random() * 0.004, start=start, results=results, content=content) -> None:
            start.wait()
            time.sleep(pause)
            response = upload(world.b, content)
            results["upload"], results["id"] = response.status_code, response.json()["id"]

        threads = [threading.Thread(target=delete), threading.Thread(target=reupload)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert results["delete"] == 204 and results["upload"] == 201, results
        assert_every_row_has_its_files(world)
        same = folder(world, owned["sha256"]).stat().st_ino == before
        orders["upload reused the folder" if same else "delete went first"] += 1
        assert world.b.delete(f"/v1/datasets/{results['id']}").status_code == 204
        assert not folder(world, owned["sha256"]).exists()
    assert rows(world) == []
    print("race orders:", orders)


def test_a_folder_without_a_row_and_stale_part_files_are_swept_at_start_up(world: CommittedApp):
    """What a crash between the folder's rename and the row's commit leaves, or a crash mid-upload."""
    kept = upload(world.a, npz(20_000)).json()
    artifacts = world.settings.artifacts
    orphan = artifacts / "datasets" / ("f" * 64)
    (orphan / "manifest.json").parent.mkdir(parents=True)
    (orphan / "manifest.json").write_text("{}")
    (artifacts / "uploads" / "tmpdead.part").write_bytes(b"half an upload")
    (artifacts / "uploads" / "tmplive.part").write_bytes(b"an upload in progress")
    old = time.time() - 2 * world.settings.upload_grace_s
    for path in (orphan, artifacts / "uploads" / "tmpdead.part", folder(world, kept["sha256"])):
        os.utime(path, (old, old))

    with TestClient(create_app(world.settings, validator=world.validator)):
        pass  # start-up sweeps

    assert not orphan.exists() and not (artifacts / "uploads" / "tmpdead.part").exists()
    assert (artifacts / "uploads" / "tmplive.part").exists()
    assert_every_row_has_its_files(world)
    (artifacts / "uploads" / "tmplive.part").unlink()
    assert world.a.delete(f"/v1/datasets/{kept['id']}").status_code == 204


def test_the_beat_task_sweeps_the_same_way(world: CommittedApp, monkeypatch):
    from worker import housekeeping

    orphan = world.settings.artifacts / "datasets" / ("9" * 64)
    orphan.mkdir(parents=True)
    old = time.time() - 2 * world.settings.upload_grace_s
    os.utime(orphan, (old, old))
    monkeypatch.setattr(housekeeping, "get_settings", lambda: world.settings)

    assert housekeeping.sweep_uploads.run() == {"uploads": [], "datasets": ["9" * 64]}
    assert not orphan.exists()


def test_a_failed_commit_leaves_a_folder_without_a_row_which_the_sweep_collects(world: CommittedApp):
    """The folder is renamed into place just before the row commits: if the commit fails, the client
    sees no dataset (nothing visible), and the orphan folder is collected."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session as AnySession

    from api.services.datasets import sweep_stale_uploads

    def fail(session: AnySession) -> None:  # the upload request's commit (not its savepoint's)
        if not session.in_nested_transaction() and session.info.get("tenant"):
            raise RuntimeError("the database went away at commit")

    content = npz(30_000)
    event.listen(AnySession, "before_commit", fail)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            upload(world.a, content)
    finally:
        event.remove(AnySession, "before_commit", fail)
    orphans = list((world.settings.artifacts / "datasets").iterdir())
    assert len(orphans) == 1 and rows(world) == []

    sweep_stale_uploads(world.settings.model_copy(update={"upload_grace_s": 0.0}),
                        ArtifactStore(world.settings.artifacts), world.factory)

    assert list((world.settings.artifacts / "datasets").iterdir()) == []
    assert list((world.settings.artifacts / "uploads").iterdir()) == []
    assert upload(world.a, content).status_code == 201  # and the same bytes upload fine afterwards
    assert_every_row_has_its_files(world)
