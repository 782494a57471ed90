"""Webhooks end to end: a real training worker, a real delivery worker, a local HTTP receiver."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cli.sse import parse
from tests.e2e.conftest import finished, wait_for
from tests.receiver import Receiver, verify
from tests.specs import DIGITS_CNN, spec

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e-0123456789abcdef"
ALL_EVENTS = ["job.queued", "job.started", "job.epoch", "job.finding", "job.succeeded", "job.failed",
              "job.cancelled"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def subscribed_events(client: TestClient, job_id: str) -> list[dict]:
    """The job's events, from the SSE replay of the finished job."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        return [e.json() for e in parse(response.iter_lines())]


def got_terminal(receiver: Receiver) -> bool:
    return any(r.event["type"] == "job.succeeded" for r in receiver.delivered())


def test_a_receiver_that_fails_at_first_gets_every_event_in_order_signed(
        live: TestClient, webhook_worker, receiver: Receiver):
    receiver.fail_first = 3
    body = spec(DIGITS_CNN, fit={"epochs": 3}, webhook={"url": receiver.url, "secret": SECRET, "events": ALL_EVENTS})
    job_id = live.post("/v1/jobs", json=body).json()["id"]

    assert wait_for(live, job_id, finished)["status"] == "succeeded"  # the failing receiver did not matter
    receiver.wait_for(got_terminal)

    expected = subscribed_events(live, job_id)
    delivered = receiver.delivered()
    assert [r.event for r in delivered] == expected  # every event, once, in order
    assert [e["data"]["epoch"] for e in expected if e["type"] == "job.epoch"] == [1, 2, 3]
    for request in receiver.requests:
        assert verify(SECRET, request.headers["Trainyard-Signature"], request.body)
        assert request.headers["Trainyard-Event-Id"] == str(request.event["id"])
        assert request.headers["Trainyard-Event-Type"] == request.event["type"]
    first = expected[0]["id"]
    assert [r.event["id"] for r in receiver.requests[:4]] == [first] * 4  # three 503s, then the 200

    attempts = live.get(f"/v1/jobs/{job_id}/deliveries", params={"event_id": first}).json()["items"]
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in reversed(attempts)] == [
        (1, "failed", 503), (2, "failed", 503), (3, "failed", 503), (4, "delivered", 200)]
    assert all(a["next_attempt_at"] for a in attempts if a["outcome"] == "failed")
    everything = live.get(f"/v1/jobs/{job_id}/deliveries", params={"limit": 200}).json()["items"]
    assert len(everything) == len(expected) + 3


def test_a_slow_receiver_does_not_slow_training(live: TestClient, webhook_worker, receiver: Receiver):
    receiver.gate.clear()  # the receiver takes every request and answers none, for now
    body = spec(DIGITS_CNN, fit={"epochs": 5}, webhook={"url": receiver.url, "secret": SECRET, "events": ALL_EVENTS})
    job_id = live.post("/v1/jobs", json=body).json()["id"]

    job = wait_for(live, job_id, finished)

    assert job["status"] == "succeeded" and job["progress"]["epoch"] == 5
    assert receiver.delivered() == []  # the job ended while its first delivery still hung
    receiver.gate.set()
    receiver.wait_for(got_terminal)
    # At least once: an attempt that timed out while the receiver hung may have been taken in too.
    received = list(dict.fromkeys(r.event["id"] for r in receiver.delivered()))
    assert received == [e["id"] for e in subscribed_events(live, job_id)]


def test_a_sweep_posts_its_own_events_signed_in_order(live: TestClient, webhook_worker, receiver: Receiver):
    receiver.fail_first = 1  # retried as a job's webhook is
    base = spec(DIGITS_CNN, fit={"epochs": 2})
    body = {"spec": base, "space": {"compile.optimizer.learning_rate": {"choice": [0.003, 0.01]}}, "sampler": "grid",
            "parallelism": 2, "webhook": {"url": receiver.url, "secret": SECRET}}
    sweep = live.post("/v1/sweeps", json=body).json()
    receiver.wait_for(lambda r: any(q.event["type"] == "sweep.succeeded" for q in r.delivered()), timeout=300)

    with live.stream("GET", f"/v1/sweeps/{sweep['id']}/events") as response:
        expected = [e.json() for e in parse(response.iter_lines()) if e.event != "trial.started"]
    assert [r.event for r in receiver.delivered()] == expected  # its events but trial.started, once, in order
    assert [e["type"] for e in expected].count("trial.finished") == 2 and expected[-1]["type"] == "sweep.succeeded"
    assert "sweep.best" in [e["type"] for e in expected]
    assert all(verify(SECRET, r.headers["Trainyard-Signature"], r.body) for r in receiver.requests)
    assert receiver.requests[0].status == 503 and receiver.requests[1].event == expected[0]
    attempts = live.get(f"/v1/sweeps/{sweep['id']}/deliveries", params={"event_id": expected[0]["id"]}).json()
    assert [(a["attempt"], a["outcome"], a["event_type"]) for a in reversed(attempts["items"])] == [
        (1, "failed", "trial.finished"), (2, "delivered", "trial.finished")]
