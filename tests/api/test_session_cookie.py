"""The session cookie of same-origin pages: HTTP-only and SameSite=Strict, accepted as the key from
the server's own origin only, scoped to its tenant, ended by revoking the key."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.stream_tokens import issue
from api.validation.pool import ProcessPool
from models.enums import JobStatus
from models.keys import revoke
from models.tables import ApiKey
from tests.api.committed_app import CommittedApp, committed_app
from tests.auth import new_key
from tests.specs import IRIS_MLP
from tests.worker.conftest import insert_job

COOKIE = "trainyard_session"


@pytest.fixture(scope="module")
def world(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[CommittedApp]:
    with committed_app("sessions", tmp_path_factory.mktemp("sessions"), validator_pool, api_key_cache_s=0) as world:
        yield world


def signed_in(world: CommittedApp, tenant: str) -> tuple[TestClient, str]:
    """A browser (no Authorization header, not localhost) holding the cookie of a fresh key of ``tenant``."""
    key = new_key(world.factory, tenant)
    page = TestClient(world.app, client=("203.0.113.9", 5000))
    response = page.post("/v1/session", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201 and response.json()["tenant"] == tenant
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/v1" in set_cookie
    assert key not in response.headers["set-cookie"]
    return page, key


def test_the_cookie_stands_for_the_key_of_its_tenant(world: CommittedApp):
    page, _ = signed_in(world, "acme")
    own = insert_job(world.factory, IRIS_MLP, tenant="acme", status=JobStatus.succeeded)
    other = insert_job(world.factory, IRIS_MLP, tenant="globex", status=JobStatus.succeeded)
    assert page.get(f"/v1/jobs/{own}").status_code == 200
    assert page.get(f"/v1/jobs/{other}").status_code == 404
    assert page.get("/v1/jobs", headers={"Origin": "http://testserver"}).status_code == 200  # its own origin
    assert page.post(f"/v1/jobs/{own}/events:token").status_code == 201
    # Without the cookie the same browser is a stranger.
    assert TestClient(world.app, client=("203.0.113.9", 5000)).get("/v1/jobs").status_code == 401


def test_the_cookie_is_refused_from_another_origin_altered_or_after_revocation(world: CommittedApp):
    page, key = signed_in(world, "acme")
    response = page.get("/v1/jobs", headers={"Origin": "https://other.testserver"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"

    genuine = page.cookies[COOKIE]
    stream_token, _ = issue(world.app.state.stream_secret, "acme", "job_x", ttl_s=300)
    for forged in (genuine[:-2] + "xx", stream_token, "garbage"):  # a stream token is not a session
        page.cookies.set(COOKIE, forged)
        assert page.get("/v1/jobs").status_code == 401
    page.cookies.set(COOKIE, genuine)
    assert page.get("/v1/jobs").status_code == 200

    with world.factory() as session, session.begin():
        assert revoke(session, session.query(ApiKey).filter(ApiKey.prefix == key[:10]).one().id)
    assert page.get("/v1/jobs").status_code == 401


def test_signing_out_removes_the_cookie(world: CommittedApp):
    page, _ = signed_in(world, "acme")
    assert page.delete("/v1/session").status_code == 204
    assert COOKIE not in page.cookies
    assert page.get("/v1/jobs").status_code == 401
    assert page.post("/v1/session").status_code == 401  # a cookie or no key is nothing to exchange
