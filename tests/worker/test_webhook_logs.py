"""A webhook URL's credentials and query never reach a log line or a stored error."""

import logging
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.enums import EventType
from models.events import job_event
from models.redact import redact_url, redact_urls_in
from models.settings import Settings
from models.tables import Job, WebhookDelivery
from tests.receiver import Receiver
from tests.specs import IRIS_MLP, spec
from worker.webhooks import deliver_pending

TOKEN = "SECRET-q7Zt0ken"
PASSWORD = "pa55-Wh00k"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deliver_one(session_factory, make_job, settings: Settings, url: str) -> str:
    job_id = make_job(spec(IRIS_MLP, webhook={"url": url, "secret": "whsec-0123456789abcdef"}))
    with session_factory() as session, session.begin():
        session.add(job_event(session.get_one(Job, job_id), EventType.queued))
    deliver_pending(session_factory, job_id, settings=settings)  # the real HTTP attempt (webhook_http.post)
    return job_id


@pytest.mark.parametrize("reachable", [True, False], ids=["delivered", "connection-refused"])
def test_a_delivery_logs_and_stores_the_url_without_credentials_or_query(
        session_factory, db_session, make_job, settings: Settings, receiver: Receiver, caplog, reachable):
    port = receiver.server.server_address[1] if reachable else closed_port()
    url = f"http://hookuser:{PASSWORD}@127.0.0.1:{port}/in/hook?token={TOKEN}#frag-{TOKEN}"
    caplog.set_level(logging.DEBUG)  # everything any logger (httpx, httpcore, ours) has to say

    job_id = deliver_one(session_factory, make_job, settings.model_copy(update={"webhook_allow_private": True}), url)

    (row,) = db_session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id))
    if reachable:
        assert row.status_code == 200 and len(receiver.requests) == 1
        assert receiver.requests[0].headers["Authorization"].startswith("Basic ")  # the credentials were used
        assert any(r.name == "httpx" for r in caplog.records)  # httpx did log the request, redacted
    else:
        assert row.status_code is None and row.error.startswith("ConnectError")
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (TOKEN, PASSWORD, "hookuser", "token="):
        assert secret not in logged
        assert secret not in (row.error or "")
    assert f"http://127.0.0.1:{port}/in/hook" in caplog.text  # what is logged instead


@pytest.mark.parametrize(("url", "shown"), [
    ("https://u:p@hooks.example:8443/in/x?token=abc#f", "https://hooks.example:8443/in/x"),
    ("https://hooks.example/in?x=1", "https://hooks.example/in"),
    ("http://[::1]:9000/a?b", "http://[::1]:9000/a"),
    ("postgresql+psycopg://trainyard:hunter2@db:5432/trainyard", "postgresql+psycopg://db:5432/trainyard"),
    ("redis://:hunter2@redis:6379/0", "redis://redis:6379/0"),
    ("http://host:99999/x", "<a URL that does not parse>"),
])
def test_redact_url_keeps_scheme_host_port_and_path_only(url, shown):
    assert redact_url(url) == shown
    assert redact_urls_in(f"failed on '{url}': boom") == f"failed on '{shown}': boom"
