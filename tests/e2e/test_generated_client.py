"""A client generated from the OpenAPI document with openapi-python-client, as a user generates one, against
the real API server and a real worker: submit, poll, curves as JSON and as CSV, findings and the verdict as
typed models, a retry, and an unknown spec field sent on to the API and refused with its 422, not dropped."""

import importlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.servers import ApiServer
from tests.specs import IRIS_MLP, spec

pytestmark = pytest.mark.e2e

GENERATOR = Path(sys.executable).with_name("openapi-python-client")  # in the dev extra
PACKAGE = "trainyard_generated"
WAIT = 240
CONFIG = {
    "package_name_override": PACKAGE,
    "post_hooks": [],  # they only format the code (ruff), which the test does not need
    # The one media type the generator does not know: the TensorBoard archive, read as bytes (README).
    "content_type_overrides": {"application/gzip": "application/octet-stream"},
}


@pytest.fixture(scope="module")
def generated(api_server: ApiServer, tmp_path_factory) -> Iterator[ModuleType]:
    """The package openapi-python-client writes from the served document, imported."""
    assert GENERATOR.exists(), f"{GENERATOR} is missing: openapi-python-client is in the dev extra"
    out = tmp_path_factory.mktemp("client")
    (out / "openapi.json").write_text(httpx.get(f"{api_server.url}/openapi.json", timeout=30).text)
    (out / "config.json").write_text(json.dumps(CONFIG))
    done = subprocess.run([str(GENERATOR), "generate", "--path", "openapi.json", "--config", "config.json",
                           "--meta", "none", "--output-path", PACKAGE], cwd=out, capture_output=True, text=True,
                          timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "Unable to process" not in log and "WARNING" not in log, log  # every operation and schema generated
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def client(api_server: ApiServer, server_key: str, generated: ModuleType) -> Any:
    """The generated client, with an API key through the document's bearer scheme."""
    return generated.AuthenticatedClient(base_url=api_server.url, token=server_key,
                                         timeout=httpx.Timeout(60), raise_on_unexpected_status=True)


def operation(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.jobs.{name}")


def submit(client: Any, body: dict[str, Any]) -> Any:
    """POST /v1/jobs through the generated models: the spec goes through ``JobSpec.from_dict`` as a user's would."""
    from trainyard_generated.models import JobSpec

    return operation("submit_job_v1_jobs_post").sync_detailed(client=client, body=JobSpec.from_dict(body))


def wait_finished(client: Any, job_id: str) -> Any:
    get_job = operation("get_job_v1_jobs_job_id_get")
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        job = get_job.sync(job_id, client=client)
        if job.status.value in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {WAIT} s: {job.to_dict()}")


def test_submit_poll_curves_findings_and_retry_through_the_generated_client(client: Any, api_server: ApiServer):
    from trainyard_generated.models import Code, ErrorResponse, Finding, FindingsOut, JobCreated, JobOut, RetryRequest

    created = submit(client, IRIS_MLP)
    assert created.status_code == 202 and isinstance(created.parsed, JobCreated), created.content
    job = wait_finished(client, created.parsed.id)
    assert isinstance(job, JobOut) and job.status.value == "succeeded", job.to_dict()

    raw = httpx.get(f"{api_server.url}/v1/jobs/{job.id}/curves", headers=client.get_httpx_client().headers).json()
    curves = operation("get_curves_v1_jobs_job_id_curves_get").sync(job.id, client=client)
    assert curves.epoch == [1, 2, 3] and curves.duration_s == raw["duration_s"]
    assert curves["loss"] == raw["loss"] and curves["val_accuracy"] == raw["val_accuracy"]  # metric columns
    csv = operation("get_curves_csv_v1_jobs_job_id_curves_csv_get").sync(job.id, client=client)
    assert isinstance(csv, str) and csv.splitlines()[0].split(",")[0] == "epoch" and len(csv.splitlines()) == 4

    # Findings and the verdict are models with an enum code, not dicts; the same in the job and in /findings.
    findings = operation("get_findings_v1_jobs_job_id_findings_get").sync(job.id, client=client)
    assert isinstance(findings, FindingsOut) and isinstance(findings.verdict, Finding)
    assert isinstance(findings.verdict.code, Code) and findings.verdict.code.value == "verdict"
    assert all(isinstance(f, Finding) for f in findings.findings) and findings.findings[-1] == findings.verdict
    assert isinstance(job.verdict, Finding) and job.verdict.to_dict() == findings.verdict.to_dict()

    archive = operation("download_tensorboard_v1_jobs_job_id_tensorboard_get").sync(job.id, client=client)
    assert archive.payload.read(2) == b"\x1f\x8b"  # a gzip stream

    # A retry with a merge patch: the body model holds both of its sources' fields.
    retried = operation("retry_job_v1_jobs_job_id_retry_post").sync_detailed(
        job.id, client=client, body=RetryRequest.from_dict({"patch": {"fit": {"epochs": 2}}}))
    assert retried.status_code == 202 and isinstance(retried.parsed, JobCreated), retried.content
    child = wait_finished(client, retried.parsed.id)
    assert child.parent_id == job.id and child.spec["fit"]["epochs"] == 2 and child.status.value == "succeeded"
    missing = operation("get_job_v1_jobs_job_id_get").sync_detailed("job_nope", client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, ErrorResponse)


def test_an_unknown_spec_field_is_sent_on_and_refused_with_the_apis_422(client: Any):
    from trainyard_generated.models import ErrorResponse, FitSpec

    # The generated model keeps the key it does not know (additionalProperties is a schema, api/openapi.py) ...
    assert FitSpec.from_dict({"epochs": 3, "n_epoch": 5}).to_dict() == {"epochs": 3, "n_epoch": 5}
    # ... so the API sees it and names it, with the field it meant, instead of queueing a job that ignores it.
    refused = submit(client, spec(IRIS_MLP, fit={"n_epoch": 5}))
    assert refused.status_code == 422 and isinstance(refused.parsed, ErrorResponse), refused.content
    error = json.loads(refused.content)["error"]
    assert any(d["path"] == "fit.n_epoch" for d in error["details"]), error
    assert "did you mean 'epochs'" in refused.content.decode()
