"""CORS: pages on the origins of TRAINYARD_CORS_ORIGINS may call the API; other origins get no
Access-Control-Allow-Origin, so their browsers block the answer. None are allowed by default."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models.settings import Settings

ALLOWED = "https://dash.example.com"
REFUSED = "https://evil.example.net"


def app_client(tmp_path, **settings) -> TestClient:
    # No lifespan (no `with`): CORS is answered before any route, and /healthz needs none.
    return TestClient(create_app(Settings(data_dir=tmp_path, **settings)))


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    yield app_client(tmp_path, cors_origins=f"{ALLOWED}/, http://localhost:5173")


def preflight(client: TestClient, origin: str, method: str = "GET", headers: str = "authorization, last-event-id"):
    return client.options("/v1/jobs/job_1/events", headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})


def test_a_preflight_from_an_allowed_origin_allows_the_key_and_last_event_id(client: TestClient):
    response = preflight(client, ALLOWED)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "last-event-id", "content-type"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert preflight(client, "http://localhost:5173", "POST", "authorization, content-type").status_code == 200


def test_a_preflight_from_another_origin_is_refused(client: TestClient):
    response = preflight(client, REFUSED)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight(client, "http://localhost:8080").headers  # port matters


def test_answers_carry_cors_headers_for_allowed_origins_only(client: TestClient):
    response = client.get("/healthz", headers={"Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": REFUSED}).headers
    # An error answer too, so that the page can read why it was refused.
    refused = client.get("/v1/jobs", headers={"Origin": ALLOWED})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ALLOWED


def test_no_origin_is_allowed_by_default(tmp_path):
    client = app_client(tmp_path)
    assert "access-control-allow-origin" not in preflight(client, ALLOWED).headers
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": ALLOWED}).headers
