"""Server-Sent Events while a real worker process trains: every epoch once, in order, resumable."""

import pytest
from fastapi.testclient import TestClient

from cli.sse import ServerEvent, parse
from tests.e2e.conftest import finished, wait_for
from tests.specs import DIGITS_CNN, spec

pytestmark = pytest.mark.e2e


def stream(client: TestClient, job_id: str, **request) -> list[ServerEvent]:
    with client.stream("GET", f"/v1/jobs/{job_id}/events", **request) as response:
        assert response.status_code == 200
        return list(parse(response.iter_lines()))


def epochs_of(events: list[ServerEvent]) -> list[int]:
    return [e.json()["data"]["epoch"] for e in events if e.event == "job.epoch"]


def test_a_client_reading_the_stream_sees_every_epoch_once_in_order(live: TestClient):
    job_id = live.post("/v1/jobs", json=spec(DIGITS_CNN, fit={"epochs": 6})).json()["id"]

    events = stream(live, job_id)  # connected right after submit; ends with the job

    assert [e.event for e in events][:2] == ["job.queued", "job.started"]
    assert events[-1].event == "job.succeeded" and events[-1].json()["data"]["stop_reason"] == "completed"
    assert epochs_of(events) == [1, 2, 3, 4, 5, 6] == live.get(f"/v1/jobs/{job_id}/curves").json()["epoch"]
    ids = [int(e.id) for e in events]
    assert ids == sorted(set(ids))
    metrics = next(e for e in events if e.event == "job.epoch").json()["data"]["metrics"]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= metrics.keys()


def test_a_reconnect_with_last_event_id_during_training_resumes_exactly(live: TestClient):
    job_id = live.post("/v1/jobs", json=spec(DIGITS_CNN, fit={"epochs": 300})).json()["id"]

    before: list[ServerEvent] = []
    with live.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        for event in parse(response.iter_lines()):
            before.append(event)
            if epochs_of(before) == [1, 2]:
                break  # the client drops off mid-training
    after: list[ServerEvent] = []
    with live.stream("GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": before[-1].id}) as response:
        for event in parse(response.iter_lines()):
            after.append(event)
            if len(epochs_of(after)) == 2:  # two more live epochs, then stop the job
                assert live.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    job = wait_for(live, job_id, finished, timeout=60)

    assert after[-1].event == "job.cancelled" and job["status"] == "cancelled"
    assert [e.id for e in before + after] == [e.id for e in stream(live, job_id)]  # nothing missed, nothing twice
    seen = epochs_of(before + after)
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 4
