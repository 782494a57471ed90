"""The spec's webhook through the API: URLs checked, the secret never shown, deliveries listed."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from models.enums import DeliveryOutcome, EventType
from models.events import job_event
from models.tables import Job, WebhookDelivery
from tests.api.conftest import job_count
from tests.specs import DIGITS_CNN, spec

SECRET = "whsec-0123456789abcdef"


def with_hook(url: str = "https://93.184.215.14/in", **hook) -> dict:
    return spec(DIGITS_CNN, webhook={"url": url, "secret": SECRET, **hook})


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/in", "http://10.0.0.8/in", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/in", "ftp://93.184.215.14/in",
])
def test_a_webhook_url_the_service_must_not_call_is_a_422_naming_the_field(client: TestClient, db_session: Session,
                                                                           url: str):
    before = job_count(db_session)
    response = client.post("/v1/jobs", json=with_hook(url))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["path"] == "webhook.url"
    assert "refused" in error["message"]
    assert job_count(db_session) == before


def test_the_operator_can_allow_private_receivers(client: TestClient):
    client.app.state.settings = client.app.state.settings.model_copy(update={"webhook_allow_private": True})
    assert client.post("/v1/jobs", json=with_hook("http://127.0.0.1:9000/in")).status_code == 202


def test_the_secret_is_stored_for_signing_but_never_returned(client: TestClient, db_session: Session):
    response = client.post("/v1/jobs", json=with_hook(events=["job.epoch", "job.succeeded"]))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    shown = [response.text, client.get(f"/v1/jobs/{job_id}").text, client.get("/v1/jobs").text,
             client.post("/v1/jobs:validate", json=with_hook()).text]
    assert all(SECRET not in text for text in shown)
    assert response.json()["spec"]["webhook"] == {"url": "https://93.184.215.14/in",
                                                  "events": ["job.epoch", "job.succeeded"]}
    assert db_session.get(Job, job_id).spec["webhook"]["secret"] == SECRET


@pytest.mark.parametrize(("hook", "path", "fragment"), [
    ({"secret": "short-secret"}, "webhook.secret", "at least 16 characters"),
    ({"events": ["job.epochs"]}, "webhook.events[0]", "job.epoch"),
    ({"retries": 3}, "webhook.retries", "unknown field"),
])
def test_webhook_fields_are_checked(client: TestClient, hook: dict, path: str, fragment: str):
    response = client.post("/v1/jobs", json=with_hook(**hook))
    assert response.status_code == 422
    detail = next(d for d in response.json()["error"]["details"] if d["path"] == path)
    assert fragment in detail["message"]
    assert "short-secret" not in response.text  # a refused secret is not echoed either


def test_deliveries_are_listed_newest_first_with_cursor_pagination(client: TestClient, db_session: Session):
    job_id = client.post("/v1/jobs", json=with_hook()).json()["id"]
    job = db_session.get_one(Job, job_id)
    event = job_event(job, EventType.started)
    db_session.add(event)
    db_session.flush()
    for attempt, outcome, status in ((1, DeliveryOutcome.failed, 503), (2, DeliveryOutcome.failed, None),
                                     (3, DeliveryOutcome.delivered, 200)):
        db_session.add(WebhookDelivery(job_id=job_id, event_id=event.id, event_type=event.type, attempt=attempt,
                                       outcome=outcome, status_code=status, duration_ms=3.5,
                                       error=None if status == 200 else "the receiver answered HTTP 503"))
    db_session.flush()

    first = client.get(f"/v1/jobs/{job_id}/deliveries", params={"limit": 2}).json()
    second = client.get(f"/v1/jobs/{job_id}/deliveries", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    attempts = [d["attempt"] for d in first["items"] + second["items"]]
    assert attempts == [3, 2, 1] and second["next_cursor"] is None
    newest = first["items"][0]
    assert newest["outcome"] == "delivered" and newest["status_code"] == 200
    assert newest["event_id"] == event.id and newest["event_type"] == "job.started"
    filtered = client.get(f"/v1/jobs/{job_id}/deliveries", params={"event_id": event.id + 1000}).json()
    assert filtered["items"] == []


def test_deliveries_of_an_unknown_job_or_with_a_bad_cursor_are_json_errors(client: TestClient):
    assert client.get("/v1/jobs/job_nope/deliveries").json()["error"]["code"] == "not_found"
    job_id = client.post("/v1/jobs", json=with_hook()).json()["id"]
    response = client.get(f"/v1/jobs/{job_id}/deliveries", params={"cursor": "abc"})
    assert response.status_code == 422 and response.json()["error"]["details"][0]["path"] == "query.cursor"
