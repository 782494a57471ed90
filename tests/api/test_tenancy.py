"""API keys and tenants against committed rows: another tenant's data is a 404 on
every endpoint, keys are checked, and the per-tenant limits hold."""

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.validation.pool import ProcessPool
from models.keys import revoke
from models.tables import ApiKey
from tests.api.committed_app import CommittedApp, committed_app
from tests.auth import new_key
from tests.specs import IRIS_MLP, spec


@pytest.fixture(scope="module")
def world(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[CommittedApp]:
    with committed_app("tenancy", tmp_path_factory.mktemp("tenancy"), validator_pool, max_queued_jobs_per_tenant=4,
                       max_epoch_samples=100_000, max_request_bytes=64 * 1024, api_key_cache_s=0) as world:
        yield world


@pytest.fixture(scope="module")
def anonymous(world: CommittedApp) -> Iterator[TestClient]:
    """A client without a key, from an address of this machine."""
    with TestClient(world.app, client=("127.0.0.1", 5000)) as client:
        yield client


def npz(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    np.savez(buffer, x=rng.normal(size=(60, 4)).astype("float32"), y=np.arange(60) % 3)
    return buffer.getvalue()


def test_requests_without_a_valid_key_are_401(anonymous: TestClient):
    assert anonymous.get("/v1/jobs").status_code == 401
    for header in ("Bearer", "Basic abc", "Bearer ty_not-a-key"):
        response = anonymous.get("/v1/jobs", headers={"Authorization": header})
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert anonymous.get("/healthz").status_code == 200  # probes need no key


def test_a_revoked_key_is_refused(world: CommittedApp, anonymous: TestClient):
    key = new_key(world.factory, "acme")
    assert anonymous.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with world.factory() as session, session.begin():
        key_id = session.query(ApiKey).filter(ApiKey.prefix == key[:10]).one().id
        assert revoke(session, key_id)
    assert anonymous.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_keys_are_stored_hashed(world: CommittedApp):
    key = new_key(world.factory, "acme")
    with world.factory() as session:
        rows = session.query(ApiKey).all()
    assert all(key not in (row.sha256, row.prefix, row.name) for row in rows)


def test_every_endpoint_of_another_tenants_job_and_dataset_is_404(world: CommittedApp):
    dataset = world.a.post("/v1/datasets", files={"file": ("a.npz", npz())}).json()
    job = world.a.post("/v1/jobs", json=spec(IRIS_MLP, dataset=dataset["id"], data={"one_hot": True})).json()
    job_id, ds = job["id"], dataset["id"]
    reads = [f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/curves", f"/v1/jobs/{job_id}/findings",
             f"/v1/jobs/{job_id}/model", f"/v1/jobs/{job_id}/deliveries", f"/v1/jobs/{job_id}/events",
             f"/v1/datasets/{ds}"]
    for path in reads:
        response = world.b.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"  # the same answer as for an id that never existed
    assert world.b.post(f"/v1/jobs/{job_id}/cancel").status_code == 404
    assert world.b.post(f"/v1/jobs/{job_id}/retry", json={"patch": {}}).status_code == 404
    assert world.b.delete(f"/v1/datasets/{ds}").status_code == 404
    assert job_id not in world.b.get("/v1/jobs", params={"limit": 200}).text
    assert ds not in world.b.get("/v1/datasets", params={"limit": 200}).text
    stolen = world.b.post("/v1/jobs", json=spec(IRIS_MLP, dataset=ds))
    assert stolen.status_code == 422 and stolen.json()["error"]["details"][0]["path"] == "dataset"
    # ...while the owner sees all of it.
    assert world.a.get(f"/v1/jobs/{job_id}").status_code == 200
    assert world.a.get(f"/v1/datasets/{ds}").status_code == 200
    assert world.a.post(f"/v1/jobs/{job_id}/cancel").status_code == 202


def test_the_same_file_and_the_same_idempotency_key_in_two_tenants_stay_apart(world: CommittedApp):
    content = npz(seed=7)
    mine = world.a.post("/v1/datasets", files={"file": ("same.npz", content)}).json()
    theirs = world.b.post("/v1/datasets", files={"file": ("same.npz", content)}).json()
    assert mine["sha256"] == theirs["sha256"] and mine["id"] != theirs["id"]
    assert world.a.delete(f"/v1/datasets/{mine['id']}").status_code == 204
    body = spec(IRIS_MLP, dataset=theirs["id"], data={"one_hot": True})
    job = world.b.post("/v1/jobs", json=body, headers={"Idempotency-Key": "nightly"})
    assert job.status_code == 202  # their copy of the bytes is still there
    other = world.a.post("/v1/jobs", json=spec(IRIS_MLP), headers={"Idempotency-Key": "nightly"})
    assert other.status_code == 202 and other.json()["id"] != job.json()["id"]
    for client, job_id in ((world.b, job.json()["id"]), (world.a, other.json()["id"])):
        client.post(f"/v1/jobs/{job_id}/cancel")


def test_queued_jobs_per_tenant_are_capped_with_429(world: CommittedApp):
    queued = []
    for _ in range(world.settings.max_queued_jobs_per_tenant):
        response = world.b.post("/v1/jobs", json=IRIS_MLP)
        if response.status_code == 429:
            break
        queued.append(response.json()["id"])
    refused = world.b.post("/v1/jobs", json=IRIS_MLP)
    assert refused.status_code == 429 and "queued jobs" in refused.json()["error"]["message"]
    assert world.a.post("/v1/jobs", json=IRIS_MLP).status_code == 202  # the other tenant is not affected
    for job_id in queued:
        world.b.post(f"/v1/jobs/{job_id}/cancel")


def test_a_job_too_big_is_413_and_so_is_a_huge_body(world: CommittedApp):
    too_long = world.a.post("/v1/jobs", json=spec(IRIS_MLP, fit={"epochs": 2000}))
    assert too_long.status_code == 413 and "sample passes" in too_long.json()["error"]["message"]
    huge = world.a.post("/v1/jobs", content=b'{"name": "' + b"x" * 100_000 + b'"}',
                        headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/json"
    assert huge.json() == {"error": {"code": "payload_too_large", "details": [],  # the one error shape
                                     "message": "the request body is larger than the limit of 65536 bytes"}}


def test_anonymous_access_from_this_machine_only_when_configured(world: CommittedApp, validator_pool: ProcessPool):
    settings = world.settings.model_copy(update={"allow_anonymous_localhost": True})
    with TestClient(create_app(settings, validator=validator_pool), client=("127.0.0.1", 5000)) as local, \
            TestClient(create_app(settings, validator=validator_pool), client=("10.1.2.3", 5000)) as remote:
        assert local.get("/v1/jobs").status_code == 200
        assert remote.get("/v1/jobs").status_code == 401
