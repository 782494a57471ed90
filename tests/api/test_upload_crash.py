"""An API process killed in the middle of an upload: its part file and staging folder are swept when
an API starts again once they are older than the grace period, and nothing else is left."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from migrations import upgrade
from models.db import make_engine, make_session_factory
from models.settings import Settings
from tests.auth import new_key
from tests.conftest import REDIS_URL, create_database, drop_database
from tests.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = Settings().upload_grace_s  # the default: the leftovers are aged past it, not waited for
SERVE = ("import sys, uvicorn; from api.app import create_app; "
         "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')")


class Api:
    """The real app under uvicorn, in its own process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port("TRAINYARD_TEST_UPLOAD_PORTS", "18100-18199")
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-c", SERVE, str(self.port)], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the API did not start:\n{log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def environment(tmp_path) -> Iterator[tuple[dict[str, str], str]]:
    url = create_database("trainyard_crash")
    upgrade(url)
    engine = make_engine(url)
    key = new_key(make_session_factory(engine), "crash")
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINYARD_VALIDATOR_PROCESSES": "1",
           "TRAINYARD_DATA_DIR": str(tmp_path / "data"),
           "TRAINYARD_DATABASE_URL": url, "TRAINYARD_BROKER_URL": REDIS_URL,
           "TRAINYARD_TRAIN_QUEUE": f"void-{uuid.uuid4().hex[:8]}",
           "CUDA_VISIBLE_DEVICES": ""}
    yield env, key
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
    api = Api(env, tmp_path / "api.log")
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
    again = Api(env, tmp_path / "api-again.log")
    try:
        assert upload_leftovers(artifacts) == []
        assert not (artifacts / "datasets").exists() or list((artifacts / "datasets").iterdir()) == []
        listed = httpx.get(f"{again.url}/v1/datasets", headers={"Authorization": f"Bearer {key}"}).json()
        assert all(item["builtin"] for item in listed["items"])  # no row either
    finally:
        again.stop()
