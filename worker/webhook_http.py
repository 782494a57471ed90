"""One HTTP attempt at a webhook: sign the body, POST it to the checked address.

The signature header is ``Trainyard-Signature: t=<unix seconds>,v1=<hex>``
where ``hex = HMAC-SHA256(secret, f"{t}." + body)``; putting the timestamp
under the MAC lets a receiver refuse replays of an old delivery.

A webhook URL may carry credentials or a token (``https://u:p@host/?token=…``):
log lines and stored errors show it through ``models.redact`` only.
"""

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

import httpx

from models.redact import redact_url, redact_urls_in
from models.webhook_url import UnsafeUrl, check_url

log = logging.getLogger(__name__)


class RedactUrls(logging.Filter):
    """Rewrites a record's message with its URLs redacted.

    httpx logs every request at INFO as ``HTTP Request: POST <full URL> ...``;
    in a worker that logs INFO, that put webhook tokens in the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_urls_in(record.getMessage()), None
        return True


logging.getLogger("httpx").addFilter(RedactUrls())

SIGNATURE_HEADER = "Trainyard-Signature"
USER_AGENT = "Trainyard-Webhooks/1.0"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None  # None: the receiver answered 2xx
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Delivery:
    """What to send: the event and the job's webhook settings."""

    url: str
    secret: str
    event_id: int
    event_type: str
    body: bytes
    attempt: int

    def __repr__(self) -> str:  # the secret must never reach a log line
        return f"Delivery(event_id={self.event_id}, event_type={self.event_type!r}, attempt={self.attempt})"


def _host_header(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == (443 if scheme == "https" else 80) else f"{shown}:{port}"


def post(delivery: Delivery, *, timeout_s: float, allow_private: bool) -> Attempt:
    """POST once; never raises for anything the receiver or the network does."""
    attempt = _post(delivery, timeout_s=timeout_s, allow_private=allow_private)
    log.info("webhook event %d (%s) attempt %d to %s: %s in %.0f ms", delivery.event_id, delivery.event_type,
             delivery.attempt, redact_url(delivery.url), attempt.error or f"HTTP {attempt.status_code}",
             attempt.duration_ms)
    return attempt


def _post(delivery: Delivery, *, timeout_s: float, allow_private: bool) -> Attempt:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:  # again at every attempt: the DNS answer may have changed since submit
        target = check_url(delivery.url, allow_private=allow_private)
    except UnsafeUrl as exc:
        return Attempt(None, redact_urls_in(f"refused: {exc}"), elapsed())
    timestamp = int(time.time())
    headers = {
        "Host": _host_header(target.host, target.port, target.scheme),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Trainyard-Event-Id": str(delivery.event_id),
        "Trainyard-Event-Type": delivery.event_type,
        "Trainyard-Delivery-Attempt": str(delivery.attempt),
        SIGNATURE_HEADER: signature(delivery.secret, timestamp, delivery.body),
    }
    # Connect to the address that was checked, not to whatever the name resolves
    # to a moment later; TLS still verifies the certificate against the host name.
    pinned = httpx.URL(target.url).copy_with(host=target.address)
    try:
        # trust_env=False: an HTTP(S)_PROXY variable must not reroute deliveries.
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client, client.stream(
            "POST", pinned, content=delivery.body, headers=headers, extensions={"sni_hostname": target.host}
        ) as response:
            status = response.status_code  # the body is not read: a receiver's reply is not ours to store
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        # Stored and listed: an exception's text may quote the URL it failed on.
        text = redact_urls_in(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__
        return Attempt(None, text[:500], elapsed())
    if 200 <= status < 300:
        return Attempt(status, None, elapsed())
    return Attempt(status, f"the receiver answered HTTP {status}", elapsed())
