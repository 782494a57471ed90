"""Dataset upload and lifecycle, including the files that must be refused."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.settings import Settings
from models.tables import Dataset
from tests.specs import IRIS_MLP, spec


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(client: TestClient, content: bytes, filename: str = "data.npz"):
    return client.post("/v1/datasets", files={"file": (filename, content, "application/octet-stream")})


def dataset_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Dataset)) or 0


def stored_files(settings: Settings) -> list[str]:
    root = settings.artifacts
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_upload_describes_arrays_and_deduplicates(client: TestClient, settings: Settings):
    content = npz_bytes(x=np.random.default_rng(0).normal(size=(50, 4)).astype("float32"), y=np.arange(50) % 3)

    first = upload(client, content)
    second = upload(client, content, filename="copy.npz")

    assert first.status_code == 201, first.text
    assert second.status_code == 200
    body = first.json()
    assert second.json()["id"] == body["id"]
    assert body["arrays"] == {"x": {"shape": [50, 4], "dtype": "float32"}, "y": {"shape": [50], "dtype": "int64"}}
    assert body["samples"] == 50 and len(body["sha256"]) == 64
    assert client.get(f"/v1/datasets/{body['id']}").json() == body
    assert stored_files(settings) == [f"datasets/{body['sha256']}.npz"]


def test_an_uploaded_dataset_can_be_trained_on(client: TestClient):
    content = npz_bytes(x=np.random.default_rng(0).normal(size=(40, 4)).astype("float32"), y=np.arange(40) % 3)
    dataset_id = upload(client, content).json()["id"]
    response = client.post("/v1/jobs", json=spec(IRIS_MLP, dataset=dataset_id))
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("content", "filename", "status", "fragment"),
    [
        (npz_bytes(x=np.array([{"a": 1}, None], dtype=object)), "data.npz", 422, "pickled"),
        (npz_bytes(x=np.arange(10))[:40], "data.npz", 422, "not a valid .npz"),
        (b"", "data.npz", 422, "empty"),
        (b"garbage" * 10, "data.npz", 422, "not a valid .npz"),
        (npz_bytes(x=np.array(["a", "b"])), "data.npz", 422, "only numeric arrays"),
        (b"a,b\n1,2\n", "data.exe", 415, "unsupported file type"),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(client, db_session, settings, content, filename, status, fragment):
    before = dataset_count(db_session)

    response = upload(client, content, filename)

    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"]
    assert dataset_count(db_session) == before
    assert stored_files(settings) == []


def test_too_large_upload_is_413_and_leaves_nothing(client, db_session, settings: Settings):
    settings.max_upload_bytes = 1000
    before = dataset_count(db_session)
    response = upload(client, npz_bytes(x=np.zeros(1000)))
    assert response.status_code == 413
    assert dataset_count(db_session) == before
    assert stored_files(settings) == []


def test_builtins_are_listed_and_described(client: TestClient):
    listed = client.get("/v1/datasets").json()["items"]
    ids = [d["id"] for d in listed]
    assert {"builtin:digits", "builtin:iris", "builtin:wine", "builtin:diabetes", "builtin:breast_cancer"} <= set(ids)
    digits = client.get("/v1/datasets/builtin:digits").json()
    assert digits["arrays"]["x"]["shape"] == [1797, 8, 8, 1] and digits["samples"] == 1797
    assert client.get("/v1/datasets/builtin:nope").status_code == 404


def test_delete_refused_while_a_queued_job_uses_it_then_allowed(client, db_session, settings: Settings):
    content = npz_bytes(x=np.zeros((30, 4), dtype="float32"), y=np.arange(30) % 3)
    dataset_id = upload(client, content).json()["id"]
    job_id = client.post("/v1/jobs", json=spec(IRIS_MLP, dataset=dataset_id)).json()["id"]

    refused = client.delete(f"/v1/datasets/{dataset_id}")
    assert refused.status_code == 409 and job_id in refused.json()["error"]["message"]

    client.post(f"/v1/jobs/{job_id}/cancel")
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert stored_files(settings) == []
    assert client.delete("/v1/datasets/builtin:iris").status_code == 409
