"""The OpenAPI document says what the API does: every status, the real media types,
the bearer scheme, and the rules the schema cannot express. Where a statement is
about behaviour, the request is made and the answer held to the document."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models.settings import Settings

ERROR_REF = "#/components/schemas/ErrorResponse"
AUTHENTICATED = {"401", "422", "503"}
# The error statuses of each operation, beyond AUTHENTICATED; the test below holds the document to this list.
EXPECTED = {
    ("post", "/v1/jobs:validate"): {"400", "413", "429"},
    ("post", "/v1/jobs"): {"400", "409", "413", "429"},
    ("get", "/v1/jobs"): set(),
    ("get", "/v1/jobs/{job_id}"): {"404"},
    ("get", "/v1/jobs/{job_id}/findings"): {"404"},
    ("post", "/v1/jobs/{job_id}/retry"): {"400", "404", "409", "413", "429"},
    ("get", "/v1/jobs/{job_id}/curves"): {"404"},
    ("get", "/v1/jobs/{job_id}/curves.csv"): {"404"},
    ("post", "/v1/jobs/{job_id}/cancel"): {"404", "409"},
    ("get", "/v1/jobs/{job_id}/model"): {"404", "409"},
    ("post", "/v1/jobs/{job_id}/predict"): {"404", "409", "413", "429"},
    ("get", "/v1/jobs/{job_id}/tensorboard"): {"404"},
    ("get", "/v1/jobs/{job_id}/events"): {"404"},
    ("post", "/v1/jobs/{job_id}/events:token"): {"404"},
    ("get", "/v1/jobs/{job_id}/deliveries"): {"404"},
    ("post", "/v1/sweeps"): {"400", "413", "429"},
    ("get", "/v1/sweeps"): set(),
    ("get", "/v1/sweeps/{sweep_id}"): {"404"},
    ("post", "/v1/sweeps/{sweep_id}/cancel"): {"404", "409"},
    ("get", "/v1/sweeps/{sweep_id}/events"): {"404"},
    ("get", "/v1/sweeps/{sweep_id}/deliveries"): {"404"},
    ("post", "/v1/datasets"): {"400", "413", "415"},
    ("get", "/v1/datasets"): set(),
    ("get", "/v1/datasets/{dataset_id}"): {"404"},
    ("delete", "/v1/datasets/{dataset_id}"): {"404", "409"},
    ("post", "/v1/ensembles"): {"400", "413", "429"},
    ("get", "/v1/ensembles"): set(),
    ("get", "/v1/ensembles/{ensemble_id}"): {"404"},
    ("get", "/v1/ensembles/{ensemble_id}/model"): {"404", "409"},
    ("post", "/v1/session"): set(),
    ("delete", "/v1/session"): set(),
}


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")  # what /docs shows, not only app.openapi()
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def keyed_client(settings: Settings, validator_pool) -> Iterator[TestClient]:
    """The app with its real API-key check (the ``client`` fixture stands in a tenant)."""
    with TestClient(create_app(settings, validator=validator_pool)) as test_client:
        yield test_client


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def documented(doc: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answers {status}, undocumented"
    return responses[str(status)]


def assert_error_shape(response) -> None:
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and isinstance(error["details"], list)


def test_every_v1_operation_documents_its_error_statuses_with_the_json_error_shape(doc):
    v1 = {(method, path): op for method, path, op in operations(doc) if path.startswith("/v1/")}
    assert set(v1) == set(EXPECTED)
    for key, operation in v1.items():
        errors = {status for status in operation["responses"] if status[0] in "45"}
        assert errors == AUTHENTICATED | EXPECTED[key], key
        for status in errors:
            response = operation["responses"][status]
            assert response["content"] == {"application/json": {"schema": {"$ref": ERROR_REF}}}, (key, status)
            assert response["description"]
        assert "Retry-After" in operation["responses"]["503"]["headers"]
    schemas = doc["components"]["schemas"]
    assert set(schemas["ErrorResponse"]["properties"]) == {"error"}
    assert {"code", "message", "details"} <= set(schemas["ErrorBody"]["properties"])
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is never what the API sends


def test_the_bearer_scheme_is_declared_and_required_by_every_v1_operation_only(doc):
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["type"] == "http"
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for method, path, operation in operations(doc):
        needs_key = path.startswith("/v1/")
        assert (operation.get("security") == [{"HTTPBearer": []}]) == needs_key, (method, path)
        # The key is the scheme's business: no Authorization parameter beside it.
        assert not any(p["name"].lower() == "authorization" for p in operation.get("parameters", []))


def test_media_types_are_the_ones_sent(doc):
    def content(method: str, path: str, status: str) -> set[str]:
        return set(doc["paths"][path][method]["responses"][status].get("content", {}))

    assert content("get", "/metrics", "200") == {"text/plain"}
    assert content("get", "/metrics", "503") == {"application/json"}
    assert content("get", "/v1/jobs/{job_id}/events", "200") == {"text/event-stream"}
    assert content("get", "/v1/jobs/{job_id}/events", "404") == {"application/json"}
    # One media type per answer: a generated client parses a 200 by the first it declares.
    assert content("get", "/v1/jobs/{job_id}/curves", "200") == {"application/json"}
    assert content("get", "/v1/jobs/{job_id}/curves.csv", "200") == {"text/csv"}
    assert content("get", "/v1/jobs/{job_id}/model", "200") == {"application/octet-stream"}
    assert content("get", "/readyz", "503") == {"application/json"}
    assert content("delete", "/v1/datasets/{dataset_id}", "204") == set()
    assert set(doc["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}


def test_the_rules_pydantic_cannot_express_are_in_the_descriptions(doc):
    for path in ("/v1/jobs", "/v1/jobs:validate"):
        text = doc["paths"][path]["post"]["description"]
        assert "Keras" in text and "signature" in text and "safe mode" in text and "builtin:" in text
    upload = doc["paths"]["/v1/datasets"]["post"]["description"]
    assert all(ext in upload for ext in (".npz", ".csv", ".zip", "415"))
    retry = doc["paths"]["/v1/jobs/{job_id}/retry"]["post"]["description"]
    assert "exactly one" in retry and "`finding`" in retry and "`patch`" in retry and "422" in retry


def test_what_the_api_answers_is_what_the_document_says(client: TestClient, keyed_client: TestClient, doc):
    def check(response, method: str, path: str) -> None:
        documented(doc, method, path, response.status_code)
        if response.status_code >= 400:
            assert_error_shape(response)

    # 401: no key, another scheme, an unknown key
    for headers in ({}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer not-a-key"}):
        response = keyed_client.get("/v1/jobs", headers=headers)
        assert response.status_code == 401
        check(response, "get", "/v1/jobs")
    # 400: a multipart body that does not parse; bytes that are not UTF-8 JSON
    response = client.post("/v1/datasets", content=b"--b\r\nno header\r\n\r\nx\r\n--b--\r\n",
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400
    check(response, "post", "/v1/datasets")
    response = client.post("/v1/jobs:validate", content=b'{"name": "\xff"}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    check(response, "post", "/v1/jobs:validate")
    # 415, 422, 404 (also on the event stream, as JSON)
    response = client.post("/v1/datasets", files={"file": ("notes.txt", b"hello")})
    assert response.status_code == 415
    check(response, "post", "/v1/datasets")
    response = client.post("/v1/jobs", json={"n_epoch": 3})
    assert response.status_code == 422
    check(response, "post", "/v1/jobs")
    response = client.get("/v1/jobs/job_missing/events")
    assert response.status_code == 404
    check(response, "get", "/v1/jobs/{job_id}/events")
    # the real media types of successes
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "trainyard_jobs" in response.text


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("TRACE", "/v1/jobs", "GET, POST"),
    ("PUT", "/v1/jobs", "GET, POST"),
    ("TRACE", "/v1/datasets/ds_x", "DELETE, GET"),
    ("PATCH", "/v1/jobs/job_x", "GET"),
    ("TRACE", "/healthz", "GET"),
])
def test_an_unsupported_method_is_a_405_that_says_what_is_allowed(client: TestClient, method, path, allow):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_example_spec_of_the_document_is_one_the_api_accepts(client: TestClient, doc):
    for path in ("/v1/jobs:validate", "/v1/jobs"):
        example = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]["iris"]
        response = client.post(path, json=example["value"])
        assert response.status_code in (200, 202), response.text
        assert not [f for f in response.json()["findings"] if f["severity"] == "error"]


def test_responses_and_the_spec_are_typed_for_generated_clients(doc):
    """A client generated from the document gets typed findings and curves, and sends unknown spec keys on
    for the API to refuse (tests/e2e/test_generated_client.py generates one and runs it)."""
    schemas = doc["components"]["schemas"]
    finding = {"$ref": "#/components/schemas/Finding"}
    for name in ("JobOut", "FindingsOut", "ValidationOut"):
        assert schemas[name]["properties"]["findings"]["items"] == finding, name
    for name in ("JobOut", "FindingsOut"):
        assert finding in schemas[name]["properties"]["verdict"]["anyOf"], name
    assert {"code", "severity", "phase", "epoch", "message", "evidence", "suggestions"} == set(
        schemas["Finding"]["properties"])
    assert "verdict" in schemas["Code"]["enum"] and "overfitting" in schemas["Code"]["enum"]
    assert set(schemas["Suggestion"]["properties"]) == {"summary", "patch"}
    # The request body is JobSpec itself, and no object of it lets an unknown key through (fit.n_epoch is a 422)
    # but a Keras object, whose keys are the arguments of a Keras class. Said as a schema no value meets, not as
    # false, which openapi-python-client takes as "drop unknown keys" (api/openapi.py).
    for path in ("/v1/jobs", "/v1/jobs:validate"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/JobSpec"}
    for name in ("JobSpec", "DataSpec", "FitSpec", "CompileSpec", "DiagnosisSpec", "LayersModel", "KerasJsonModel",
                 "ResourcesSpec", "SpeedSpec", "WebhookSpec", "RetryRequest"):
        assert schemas[name]["additionalProperties"] == {"not": {}}, name
    assert schemas["KerasObject"]["additionalProperties"] is True
    # Retry's one-of inside an allOf: a generator reads a top-level oneOf as a union of its branches alone.
    retry = schemas["RetryRequest"]
    assert "oneOf" not in retry and [b["required"] for b in retry["allOf"][0]["oneOf"]] == [["finding"], ["patch"]]
    number = {"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "null"}]}
    for name in ("last_metrics", "best_metrics", "test_metrics"):
        assert schemas["JobOut"]["properties"][name]["anyOf"][0]["additionalProperties"] == number, name
    # Curves: typed columns as JSON, and CSV as a string in an operation of its own.
    csv = doc["paths"]["/v1/jobs/{job_id}/curves.csv"]["get"]["responses"]["200"]["content"]
    assert csv["text/csv"]["schema"] == {"type": "string"}
    json_curves = doc["paths"]["/v1/jobs/{job_id}/curves"]["get"]["responses"]["200"]["content"]
    curves = json_curves["application/json"]["schema"]
    assert curves["properties"]["epoch"]["items"] == {"type": "integer"}
    assert curves["properties"]["duration_s"]["items"] == {"type": "number"}
    assert {"type": "number"} in curves["additionalProperties"]["items"]["anyOf"]
