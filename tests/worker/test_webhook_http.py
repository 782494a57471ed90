"""One delivery attempt over real HTTP: signed, with the event's headers, never raising."""

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.receiver import Receiver, verify
from worker.webhook_http import SIGNATURE_HEADER, Delivery, post

SECRET = "whsec-0123456789abcdef"
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The receiver example of the README's Webhooks section, run as written."""
    section = README.read_text().split("## Webhooks", 1)[1]
    namespace: dict = {}
    exec(section.split("```python\n", 1)[1].split("```", 1)[0], namespace)
    return namespace["verify"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def delivery(url: str, **changes) -> Delivery:
    body = json.dumps({"id": 5, "type": "job.started", "data": {}}).encode()
    return Delivery(**{"url": url, "secret": SECRET, "event_id": 5, "event_type": "job.started", "body": body,
                       "attempt": 2, **changes})


def test_a_delivery_is_signed_over_timestamp_and_body_and_names_its_event(receiver: Receiver):
    attempt = post(delivery(receiver.url), timeout_s=5, allow_private=True)

    assert attempt.ok and attempt.status_code == 200 and attempt.duration_ms > 0
    (request,) = receiver.requests
    assert request.body == delivery(receiver.url).body
    assert verify(SECRET, request.headers[SIGNATURE_HEADER], request.body)
    assert readme_verify()(SECRET, request.headers[SIGNATURE_HEADER], request.body)
    assert not readme_verify()(SECRET, request.headers[SIGNATURE_HEADER], request.body.replace(b"5", b"6"))
    assert not verify("another-secret-0123456789", request.headers[SIGNATURE_HEADER], request.body)
    assert not verify(SECRET, request.headers[SIGNATURE_HEADER], request.body + b" ")
    assert request.headers["Trainyard-Event-Id"] == "5"
    assert request.headers["Trainyard-Event-Type"] == "job.started"
    assert request.headers["Trainyard-Delivery-Attempt"] == "2"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Host"] == f"127.0.0.1:{receiver.server.server_address[1]}"


def test_non_2xx_answers_and_network_errors_are_failed_attempts_not_exceptions(receiver: Receiver):
    receiver.fail_first = 1
    failed = post(delivery(receiver.url), timeout_s=5, allow_private=True)
    assert (failed.ok, failed.status_code, failed.error) == (False, 503, "the receiver answered HTTP 503")

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    refused = post(delivery(closed), timeout_s=5, allow_private=True)
    assert refused.status_code is None and refused.error.startswith("ConnectError")

    receiver.gate.clear()  # the receiver hangs
    slow = post(delivery(receiver.url), timeout_s=0.3, allow_private=True)
    assert slow.status_code is None and "Timeout" in slow.error


def test_redirects_are_not_followed(receiver: Receiver):
    receiver.fail_first, receiver.status = 1, 302
    attempt = post(delivery(receiver.url), timeout_s=5, allow_private=True)
    assert attempt.status_code == 302 and not attempt.ok and len(receiver.requests) == 1


def test_a_private_receiver_is_refused_at_delivery_time_too(receiver: Receiver):
    attempt = post(delivery(receiver.url), timeout_s=5, allow_private=False)
    assert attempt.error.startswith("refused: '127.0.0.1' resolves to 127.0.0.1, a loopback address")
    assert receiver.requests == []


def test_the_secret_never_shows_in_a_delivery_repr():
    assert SECRET not in repr(delivery("http://127.0.0.1/")) and SECRET not in str(delivery("http://127.0.0.1/"))
