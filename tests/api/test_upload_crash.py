"""An API process killed in the middle of an upload: its part file and staging folder are swept when
an API starts again once they are older than the grace period, and nothing else is left."""

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from migrations import upgrade
from models.settings import Settings
from tests.conftest import REDIS_URL, create_database, drop_database
from tests.servers import ApiServer, api_env, api_key

pytestmark = pytest.mark.e2e

GRACE_S = Settings().upload_grace_s  # the default: the leftovers are aged past it, not waited for


@pytest.fixture
def environment(tmp_path) -> Iterator[tuple[dict[str, str], str]]:
    url = create_database("trainyard_crash")
    upgrade(url)
    yield (api_env(database_url=url, broker_url=REDIS_URL, data_dir=tmp_path / "data", validator_processes=1),
           api_key(url, "crash"))
    drop_database(url)


def age(path: Path, seconds: float) -> None:
    """``path`` and everything under it last modified ``seconds`` ago, as if left untouched that long."""
    then = time.time() - seconds
    for item in [path, *path.rglob("*")]:
        os.utime(item, (then, then), follow_symlinks=False)


def upload_leftovers(artifacts: Path) -> list[str]:
    uploads = artifacts / "uploads"
    return sorted(p.suffix for p in uploads.iterdir()) if uploads.is_dir() else []


def test_an_api_killed_mid_upload_leaves_files_that_the_next_start_sweeps(environment, tmp_path):
    env, key = environment
    artifacts = tmp_path / "data" / "artifacts"
    content = b"a,b,c,d\n" + b"1,2.5,3,4\n" * 6_000_000  # 60 MB: its ingest takes seconds
    api = ApiServer(env, tmp_path / "api.log")
    try:
        outcome: list[object] = []

        def send() -> None:
            try:
                outcome.append(httpx.post(f"{api.url}/v1/datasets", headers={"Authorization": f"Bearer {key}"},
                                          files={"file": ("big.csv", content)}, timeout=300))
            except httpx.TransportError as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 240
        while upload_leftovers(artifacts) != [".part", ".staging"] and time.monotonic() < deadline and not outcome:
            time.sleep(0.01)
        assert upload_leftovers(artifacts) == [".part", ".staging"], f"the ingest was never caught: {outcome}"
        api.kill()
        sender.join(timeout=60)
        assert outcome and isinstance(outcome[0], httpx.TransportError)  # the client saw the crash
    finally:
        api.stop()
    part = next((artifacts / "uploads").glob("*.part"))
    assert part.stat().st_size == len(content)  # the whole file had been copied; its ingest was under way
    assert upload_leftovers(artifacts) == [".part", ".staging"]  # what the crash left

    age(artifacts / "uploads", GRACE_S + 60)  # older than the grace period
    again = ApiServer(env, tmp_path / "api-again.log")
    try:
        assert upload_leftovers(artifacts) == []
        assert not (artifacts / "datasets").exists() or list((artifacts / "datasets").iterdir()) == []
        listed = httpx.get(f"{again.url}/v1/datasets", headers={"Authorization": f"Bearer {key}"}).json()
        assert all(item["builtin"] for item in listed["items"])  # no row either
    finally:
        again.stop()
