"""Schemathesis against the OpenAPI document: 0 server errors, 0 answers that the
document does not describe (status, media type, headers, body schema).

The API runs in uvicorn on a port of 18200-18299, on a database of its own. A
tenant is seeded first, through the API where it can be: an API key, an uploaded
dataset, a job accepted and then cancelled, and a job that finished with curves,
findings, events and a model. Their ids are given to schemathesis as
dictionaries for the path parameters, so the deep operations (a job's curves,
events, findings, model, retry, cancel; a dataset's show and delete) are reached
with real ids as well as with made-up ones.

`make fuzz` runs this with a larger budget (TRAINYARD_FUZZ_EXAMPLES, per
operation and phase); the suite runs a small one. Deselect with `-m "not fuzz"`.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import select

from api.app import create_app
from api.errors import ApiError
from api.services.jobs import cancel_job
from api.validation.pool import ProcessPool
from datastore.artifacts import ArtifactStore
from migrations import upgrade
from models.db import make_engine, make_session_factory, utcnow
from models.enums import EventType, JobStatus, StopReason
from models.events import job_event
from models.settings import Settings
from models.tables import EpochMetric, Job
from tests.auth import new_key
from tests.conftest import REDIS_URL, create_database, drop_database
from tests.data_files import csv_bytes
from tests.servers import free_port
from tests.specs import IRIS_MLP, spec

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("TRAINYARD_FUZZ_EXAMPLES", "15"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# "0 5xx, 0 schema violations", check by check, and the checks on auth, methods and bad input.
# Left out: positive_data_acceptance (the schema cannot know Keras's names, so a schema-valid
# spec is often a 422 by design) and ensure_resource_availability (it expects every sub-resource
# of a new job to exist, but a cancelled job's /model is a 404 by design).
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance", "ignored_auth",
          "unsupported_method", "allow_header_conformance", "negative_data_rejection",
          "missing_required_header", "use_after_free"]


@dataclass
class Seeded:
    base_url: str
    key: str
    job_ids: list[str]
    dataset_ids: list[str]


def serve(settings: Settings, validator: ProcessPool) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port("TRAINYARD_TEST_FUZZ_PORTS", "18200-18299")
    server = uvicorn.Server(uvicorn.Config(create_app(settings, validator=validator), host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            return server, thread, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    raise RuntimeError("uvicorn did not start")


def finish(factory, settings: Settings, job_id: str) -> None:
    """Give an accepted job what a worker leaves behind: epochs, a verdict, events, a model."""
    store = ArtifactStore(settings.artifacts)
    model = store.resolve(store.model_path(job_id))
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: the bytes are not the point here
    with factory() as session, session.begin():
        job = session.get_one(Job, job_id)
        session.add(job_event(job, EventType.started, attempt=1))
        for epoch, (loss, val) in enumerate([(1.1, 1.2), (0.6, 0.7), (0.4, 0.5)], start=1):
            session.add(EpochMetric(job_id=job_id, epoch=epoch, metrics={"loss": loss, "val_loss": val},
                                    duration_s=0.1))
        job.status, job.stop_reason, job.epoch = JobStatus.succeeded, StopReason.completed, 3
        job.started_at = job.finished_at = utcnow()
        job.last_metrics = job.best_metrics = {"loss": 0.4, "val_loss": 0.5}
        job.model_path = store.model_path(job_id)
        session.add(job_event(job, EventType.succeeded))


def cancel_what_is_queued(factory, stop: threading.Event) -> None:
    """The run's stand-in worker: it cancels every job as soon as it is queued.

    Schemathesis reuses ids it saw in responses, so it also streams the events of
    jobs it created itself; with no worker such a job would stay queued and its
    stream would never end. Cancelled, the stream ends with `job.cancelled`.
    """
    while not stop.wait(0.2):
        with factory() as session:
            queued = session.scalars(select(Job.id).where(Job.status == JobStatus.queued)).all()
        for job_id in queued:
            try:
                with factory() as session, session.begin():
                    cancel_job(session, job_id)
            except ApiError:
                pass  # cancelled meanwhile (by the run itself)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[Seeded]:
    url = create_database("trainyard_fuzz")
    upgrade(url)
    queue = f"fuzz-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz"), database_url=url, broker_url=REDIS_URL,
                        train_queue=queue, webhook_queue=f"{queue}-hooks", events_poll_interval_s=0.2,
                        allow_anonymous_localhost=False)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    key = new_key(factory, "fuzz")
    server, thread, base_url = serve(settings, validator_pool)
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as api:
            upload = api.post("/v1/datasets", files={"file": ("table.csv", csv_bytes(120))})
            assert upload.status_code == 201, upload.text
            accepted = [api.post("/v1/jobs", json=spec(IRIS_MLP, name=f"seed-{i}")) for i in range(2)]
            assert all(r.status_code == 202 for r in accepted), [r.text for r in accepted]
            cancelled, succeeded = (r.json()["id"] for r in accepted)
            assert api.post(f"/v1/jobs/{cancelled}/cancel").status_code == 202
            finish(factory, settings, succeeded)
        # Every seeded job has finished and every job the run makes is cancelled at once: no
        # event stream of the run waits forever.
        stop = threading.Event()
        canceller = threading.Thread(target=cancel_what_is_queued, args=(factory, stop), daemon=True)
        canceller.start()
        yield Seeded(base_url, key, [cancelled, succeeded], [upload.json()["id"]])
        stop.set()
        canceller.join(timeout=30)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.dispose()
        drop_database(url)
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue, f"{queue}-hooks")
        client.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)


def config(seeded: Seeded) -> str:
    def values(ids: list[str]) -> str:
        return ", ".join(f'"{i}"' for i in ids)

    return f"""
[dictionaries.jobs]
values = [{values(seeded.job_ids)}]

[dictionaries.datasets]
values = [{values(seeded.dataset_ids)}]

[parameters]
"path.job_id" = {{ dictionary = "jobs", probability = 0.8 }}
"path.dataset_id" = {{ dictionary = "datasets", probability = 0.5 }}
"""


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(seeded: Seeded, tmp_path):
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config(seeded))
    argv = [str(SCHEMATHESIS), "--config-file", str(config_file), "--no-color", "run",
            f"{seeded.base_url}/openapi.json", "--checks", ",".join(CHECKS),
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES),
            # One worker: on CPython 3.11.7, ast.parse from two threads at once (hypothesis describing
            # its lambdas) fails with "AST constructor recursion depth mismatch" (gh-106905).
            "--workers", "1",
            "--seed", os.environ.get("TRAINYARD_FUZZ_SEED", "20261128"), "--request-timeout", "120",
            "--suppress-health-check", "all", "--warnings", "off",
            "-H", f"Authorization: Bearer {seeded.key}",
            "--report", "har", "--report-har-path", str(tmp_path / "run.har")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    print(done.stdout[-20000:], done.stderr[-5000:])
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-3000:]
    assert "Tested: 34" in done.stdout and "No issues found" in done.stdout
    # The deep operations were reached with the seeded ids, not only answered 404.
    answered = statuses_by_operation(tmp_path / "run.har", seeded)
    for operation in DEEP:
        assert answered[operation] & {200, 201, 202, 204}, (operation, answered[operation])


# Operations that only do their work on an existing resource: each must succeed at least once.
DEEP = [("GET", "/v1/jobs/{job_id}"), ("GET", "/v1/jobs/{job_id}/curves"), ("GET", "/v1/jobs/{job_id}/curves.csv"),
        ("GET", "/v1/jobs/{job_id}/events"),
        ("GET", "/v1/jobs/{job_id}/findings"), ("GET", "/v1/jobs/{job_id}/model"),
        ("GET", "/v1/jobs/{job_id}/deliveries"), ("POST", "/v1/jobs/{job_id}/retry"),
        ("GET", "/v1/datasets/{dataset_id}"), ("DELETE", "/v1/datasets/{dataset_id}")]


def statuses_by_operation(har: Path, seeded: Seeded) -> dict[tuple[str, str], set[int]]:
    """Which statuses each operation answered with a seeded id in its path, from the run's HAR file."""
    out: dict[tuple[str, str], set[int]] = {operation: set() for operation in DEEP}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        path = urlsplit(entry["request"]["url"]).path
        for job_id in seeded.job_ids:
            path = path.replace(job_id, "{job_id}")
        for dataset_id in seeded.dataset_ids:
            path = path.replace(dataset_id, "{dataset_id}")
        key = (entry["request"]["method"], path)
        if key in out:
            out[key].add(entry["response"]["status"])
    return out
