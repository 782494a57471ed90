"""/metrics after a real job ran, parsed by prometheus_client's own parser."""

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from api import metrics
from models.db import utcnow
from models.enums import DeliveryOutcome, EventType, JobStatus
from models.tables import Job, JobEvent, WebhookDelivery
from tests.api.committed_app import committed_app
from tests.specs import IRIS_MLP, spec
from worker.training import run_training


@pytest.fixture(scope="module")
def world(validator_pool, tmp_path_factory):
    with committed_app("metrics", tmp_path_factory.mktemp("metrics"), validator_pool) as world:
        yield world


def scrape(client) -> dict[str, dict]:
    """family name → {"type", "samples": {(sample name, sorted labels): value}}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {f.name: {"type": f.type, "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value
                                                  for s in f.samples}}
            for f in text_string_to_metric_families(response.text)}


def test_metrics_after_a_real_job(world, monkeypatch):
    monkeypatch.setattr(metrics, "SETTLE_S", 0.0)  # the test's rows are all committed before it scrapes
    trained = world.a.post("/v1/jobs", json=spec(IRIS_MLP, fit={"epochs": 3})).json()["id"]
    waiting = world.a.post("/v1/jobs", json=IRIS_MLP).json()["id"]
    run_training(world.factory, trained, settings=world.settings)
    with world.factory() as session, session.begin():
        job = session.get(Job, waiting)  # as a worker on host-b holds it, its last heartbeat 40 s ago
        job.status, job.worker, job.started_at = JobStatus.running, "host-b:4242", utcnow()
        job.heartbeat_at = utcnow() - timedelta(seconds=40)
        event = session.scalars(select(JobEvent).where(JobEvent.job_id == trained).limit(1)).one()
        session.add(WebhookDelivery(job_id=trained, event_id=event.id, event_type=EventType(event.type), attempt=1,
                                    outcome=DeliveryOutcome.delivered, status_code=200))
    assert world.a.get(f"/v1/jobs/{trained}").status_code == 200
    assert world.a.get("/v1/jobs/job_nope").status_code == 404

    families = scrape(world.a)

    requests = families["trainyard_http_request_duration_seconds"]
    assert requests["type"] == "histogram"
    # By route template, never by raw path: the job ids are in no label.
    ok = ("trainyard_http_request_duration_seconds_count",
          (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "200")))
    missing = ("trainyard_http_request_duration_seconds_count",
               (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "404")))
    assert requests["samples"][ok] == 1 and requests["samples"][missing] == 1
    assert not any(trained in str(key) for key in requests["samples"])
    submitted = ("trainyard_http_request_duration_seconds_count",
                 (("method", "POST"), ("route", "/v1/jobs"), ("status", "202")))
    assert requests["samples"][submitted] == 2

    # Both jobs were sent to the training queue; no worker reads it in this test.
    depth = families["trainyard_queue_depth"]
    assert depth["samples"][("trainyard_queue_depth", (("queue", world.settings.train_queue),))] == 2
    assert depth["samples"][("trainyard_queue_depth", (("queue", world.settings.webhook_queue),))] >= 0

    epochs = families["trainyard_epoch_duration_seconds"]
    assert epochs["type"] == "histogram"
    assert epochs["samples"][("trainyard_epoch_duration_seconds_count", ())] == 3
    assert epochs["samples"][("trainyard_epoch_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert epochs["samples"][("trainyard_epoch_duration_seconds_sum", ())] > 0
    for name in ("trainyard_job_wait_seconds", "trainyard_job_run_seconds"):
        assert families[name]["samples"][(f"{name}_count", ())] == 1  # the one job that started and finished
    assert families["trainyard_job_run_seconds"]["samples"][("trainyard_job_run_seconds_sum", ())] > 0
    assert families["trainyard_jobs_finished"]["samples"] == {
        ("trainyard_jobs_finished_total", (("status", "succeeded"),)): 1}

    with world.factory() as session:
        codes = [f["code"] for f in session.get(Job, trained).findings]
    findings = {k: v for k, v in families["trainyard_findings"]["samples"].items() if k[0].endswith("_total")}
    assert families["trainyard_findings"]["type"] == "counter"
    assert sum(findings.values()) == len(codes) > 0  # the verdict at least
    for code in set(codes):
        assert sum(v for (_, labels), v in findings.items() if ("code", code) in labels) == codes.count(code)

    deliveries = families["trainyard_webhook_deliveries"]["samples"]
    assert deliveries[("trainyard_webhook_deliveries_total", (("outcome", "delivered"),))] == 1
    assert families["trainyard_running_jobs"]["samples"] == {("trainyard_running_jobs", (("host", "host-b"),)): 1}
    age = families["trainyard_running_job_heartbeat_age_seconds"]["samples"]
    assert 40 <= age[("trainyard_running_job_heartbeat_age_seconds", (("host", "host-b"),))] < 3600
    jobs = families["trainyard_jobs"]["samples"]
    assert jobs[("trainyard_jobs", (("status", "succeeded"),))] == 1
    assert jobs[("trainyard_jobs", (("status", "running"),))] == 1

    # A second scrape counts nothing twice.
    again = scrape(world.a)["trainyard_epoch_duration_seconds"]["samples"]
    assert again[("trainyard_epoch_duration_seconds_count", ())] == 3
