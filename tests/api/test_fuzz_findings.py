"""What schemathesis (and the probes beside it) found, kept as regression tests: a value
the database cannot hold is a 422 with the error shape, never a 500."""

import pytest
from fastapi.testclient import TestClient

from tests.specs import IRIS_MLP, spec


@pytest.mark.parametrize("path", [
    "/v1/jobs/job_a%00b", "/v1/jobs/job_a%00b/curves", "/v1/jobs/job_a%00b/events",
    "/v1/jobs?name=a%00b", "/v1/jobs?dataset=%00", "/v1/jobs?parent_id=%00", "/v1/jobs?cursor=%00",
    "/v1/datasets/ds_%00", "/v1/datasets?cursor=%00", "/v1/jobs/job_a%00b/deliveries",
])
def test_a_nul_byte_in_a_path_or_query_is_a_422(client: TestClient, path):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]["message"]


def test_a_nul_byte_in_a_job_name_is_a_422_and_nothing_is_stored(client: TestClient):
    response = client.post("/v1/jobs", json=spec(IRIS_MLP, name="a\u0000b"))
    assert response.status_code == 422, response.text
    assert client.get("/v1/jobs").json()["items"] == []


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/jobs/job_x/deliveries?event_id=9452883872220352512", {}),  # past BIGINT: found by schemathesis
    ("/v1/jobs/job_x/events?last_event_id=9223372036854775808", {}),
    ("/v1/jobs/job_x/events", {"Last-Event-ID": "99999999999999999999"}),
    ("/v1/jobs/job_x/events", {"Last-Event-ID": "\u00b2".encode("latin-1")}),  # "²".isdigit() is True
])
def test_event_ids_beyond_64_bits_or_not_ascii_digits_are_a_422(client: TestClient, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"
