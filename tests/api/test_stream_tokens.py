"""Stream tokens: an EventSource opens a job's events with ``?token=`` instead of the API key.
A token expires, is good for one job of one tenant only, and cannot be altered."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.stream_tokens import issue, secret_of, verify
from api.validation.pool import ProcessPool
from models.enums import EventType, JobStatus
from models.events import job_event
from models.settings import Settings
from models.tables import Job
from tests.api.committed_app import CommittedApp, committed_app
from tests.specs import IRIS_MLP
from tests.worker.conftest import insert_job


@pytest.fixture(scope="module")
def world(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[CommittedApp]:
    with committed_app("streamtokens", tmp_path_factory.mktemp("tokens"), validator_pool) as world:
        yield world


@pytest.fixture(scope="module")
def browser(world: CommittedApp) -> Iterator[TestClient]:
    """A client that sends no Authorization header, as an EventSource (and not from localhost)."""
    with TestClient(world.app, client=("203.0.113.7", 5000)) as client:
        yield client


def finished_job(world: CommittedApp, tenant: str) -> str:
    """A succeeded job of ``tenant`` with its queued and succeeded events: its stream ends by itself."""
    job_id = insert_job(world.factory, IRIS_MLP, tenant=tenant, status=JobStatus.succeeded)
    with world.factory() as session, session.begin():
        job = session.get_one(Job, job_id)
        session.add(job_event(job, EventType.queued))
        session.add(job_event(job, EventType.succeeded))
    return job_id


def events(client: TestClient, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.text


def test_a_token_opens_its_jobs_stream_without_the_key(world: CommittedApp, browser: TestClient):
    job_id = finished_job(world, "acme")
    answer = world.a.post(f"/v1/jobs/{job_id}/events:token")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["url"] == f"/v1/jobs/{job_id}/events?token={body['token']}"
    left = (datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)).total_seconds()
    assert 200 < left <= 300  # the default five minutes, less the time this took
    status, text = events(browser, body["url"])
    assert status == 200 and "event: job.queued" in text and "event: job.succeeded" in text
    # Resuming, as a page does with a fresh token after a reconnect.
    status, text = events(browser, body["url"] + "&last_event_id=0")
    assert status == 200 and "job.succeeded" in text
    assert events(browser, f"/v1/jobs/{job_id}/events")[0] == 401  # without a token, the key is needed


def refused(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


def test_an_expired_an_altered_and_another_jobs_token_are_refused(world: CommittedApp, browser: TestClient):
    job_id, other = finished_job(world, "acme"), finished_job(world, "acme")
    secret = world.app.state.stream_secret
    expired, _ = issue(secret, "acme", job_id, ttl_s=300, now=time.time() - 301)
    refused(browser, f"/v1/jobs/{job_id}/events?token={expired}")

    token = world.a.post(f"/v1/jobs/{job_id}/events:token").json()["token"]
    refused(browser, f"/v1/jobs/{other}/events?token={token}")  # good for its own job only
    payload, _, signature = token.partition(".")
    forged_payload, _ = issue(b"not the server's secret", "acme", job_id, ttl_s=3600)
    for forged in (forged_payload, payload + "." + signature[::-1], payload, "", "garbage.x"):
        refused(browser, f"/v1/jobs/{job_id}/events?token={forged}")
    assert events(browser, f"/v1/jobs/{job_id}/events?token={token}")[0] == 200  # the genuine one still works


def test_a_token_is_bound_to_its_tenant(world: CommittedApp, browser: TestClient):
    job_id = finished_job(world, "acme")
    # Another tenant cannot get a token for the job: it does not exist for them.
    assert world.b.post(f"/v1/jobs/{job_id}/events:token").status_code == 404
    # A genuine token that names another tenant does not open the job either (404 as for any other
    # tenant's id): the stream is read as the token's tenant, not as whoever holds the job id.
    globex, _ = issue(world.app.state.stream_secret, "globex", job_id, ttl_s=300)
    response = browser.get(f"/v1/jobs/{job_id}/events?token={globex}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert world.a.post("/v1/jobs/job_nope/events:token").status_code == 404


def test_verify_checks_job_expiry_and_signature():
    secret = b"s" * 32
    token, grant = issue(secret, "acme", "job_1", ttl_s=60, now=1000.0)
    assert verify(secret, token, "job_1", now=1059.0) == grant
    assert verify(secret, token, "job_1", now=1060.0) is None
    assert verify(secret, token, "job_2", now=1000.0) is None
    assert verify(b"t" * 32, token, "job_1", now=1000.0) is None


def test_the_secret_is_made_once_and_kept_readable_by_its_owner_only(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = secret_of(settings)
    assert len(first) >= 32 and secret_of(settings) == first  # the next start signs with the same
    assert (tmp_path / "stream-secret").stat().st_mode & 0o777 == 0o600
    assert secret_of(Settings(data_dir=tmp_path, stream_secret="shared-by-every-api")) == b"shared-by-every-api"
    # Distributed: on the artifacts volume that every API process mounts, not in a container's own folder.
    distributed = Settings(data_dir=tmp_path / "container", database_url="postgresql+psycopg://db/x",
                           artifact_root=tmp_path / "shared")
    assert secret_of(distributed) == (tmp_path / "shared" / ".stream-secret").read_text().encode() != first
