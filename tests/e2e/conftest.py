"""End to end: a real Celery worker process on a real Redis broker and Postgres,
and the real API (no dependency overrides)."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.processes import training_queues
from migrations import upgrade
from models.db import make_engine, make_session_factory
from models.settings import Settings
from tests.auth import authorize
from tests.conftest import create_database, drop_database
from tests.servers import ApiServer, api_key, stop_process

ROOT = Path(__file__).resolve().parents[2]
E2E_TENANT = "e2e"
E2E_REDIS = os.environ.get("TRAINYARD_TEST_E2E_REDIS", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def e2e_settings(tmp_path_factory) -> Iterator[Settings]:
    url = create_database("trainyard_e2e")
    upgrade(url)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("e2e"),
        database_url=url,
        broker_url=E2E_REDIS,
        train_queue=f"e2e-{uuid.uuid4().hex[:8]}",
        heartbeat_interval_s=1,
        running_stale_after_s=4,
        events_poll_interval_s=0.1,
        webhook_queue=f"e2e-hooks-{uuid.uuid4().hex[:8]}",
        webhook_allow_private=True,  # the test receivers listen on 127.0.0.1
        webhook_retry_base_s=0.2,
        webhook_retry_max_s=1.0,
    )
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    yield settings
    drop_database(url)


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "TRAINYARD_DATA_DIR": str(settings.data_dir),
        "TRAINYARD_DATABASE_URL": settings.database_dsn,
        "TRAINYARD_BROKER_URL": settings.broker_dsn,
        "TRAINYARD_TRAIN_QUEUE": settings.train_queue,
        "TRAINYARD_HEARTBEAT_INTERVAL_S": str(settings.heartbeat_interval_s),
        "TRAINYARD_RUNNING_STALE_AFTER_S": str(settings.running_stale_after_s),
        "TRAINYARD_WEBHOOK_QUEUE": settings.webhook_queue,
        "TRAINYARD_WEBHOOK_ALLOW_PRIVATE": str(settings.webhook_allow_private).lower(),
        "TRAINYARD_WEBHOOK_RETRY_BASE_S": str(settings.webhook_retry_base_s),
        "TRAINYARD_WEBHOOK_RETRY_MAX_S": str(settings.webhook_retry_max_s),
        "CUDA_VISIBLE_DEVICES": "",
    }


class WorkerProcess:
    """``celery worker`` as the CLI runs it, with its log in a file."""

    def __init__(self, settings: Settings, log_path: Path, *, queue: str | None = None, pool: str = "prefork",
                 concurrency: int = 1) -> None:
        self.log_path = log_path
        self.node = f"e2e-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"  # Celery's node name (-n)
        argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
                "-Q", queue or ",".join(training_queues(settings.train_queue)), "-c", str(concurrency), "--pool", pool,
                "-n", self.node, "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat"]
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(argv, cwd=ROOT, env=settings_env(settings), stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.wait_for_log("ready.", timeout=120)
        if pool == "prefork":  # only prefork children import TensorFlow
            self.wait_for_log("TensorFlow", timeout=120)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"worker did not log {text!r}:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@pytest.fixture(scope="session")
def worker(e2e_settings: Settings, tmp_path_factory) -> Iterator[WorkerProcess]:
    process = WorkerProcess(e2e_settings, tmp_path_factory.mktemp("logs") / "worker.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def webhook_worker(e2e_settings: Settings, tmp_path_factory) -> Iterator[WorkerProcess]:
    """Webhook deliveries, on their own queue, as `trainyard worker --control` runs them."""
    process = WorkerProcess(e2e_settings, tmp_path_factory.mktemp("logs") / "webhooks.log",
                            queue=e2e_settings.webhook_queue, pool="threads", concurrency=4)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def live(e2e_settings: Settings, worker: WorkerProcess) -> Iterator[TestClient]:
    with TestClient(create_app(e2e_settings)) as client:
        engine = make_engine(e2e_settings.database_dsn)
        authorize(client, make_session_factory(engine), E2E_TENANT)
        engine.dispose()
        yield client


@pytest.fixture(scope="module")
def api_server(e2e_settings: Settings, worker: WorkerProcess, tmp_path_factory) -> Iterator[ApiServer]:
    """The API as a uvicorn process of its own on the e2e settings, for clients that only speak HTTP."""
    server = ApiServer(settings_env(e2e_settings), tmp_path_factory.mktemp("api") / "api.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_key(e2e_settings: Settings) -> str:
    """An API key of the e2e tenant, for ``api_server``."""
    return api_key(e2e_settings.database_dsn, E2E_TENANT)


def wait_for(client: TestClient, job_id: str, predicate, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")


def finished(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")
