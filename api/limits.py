"""Limits on what one request and one tenant may ask for."""

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import false, func, select, text, update
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, TooManyRequests
from models.enums import JobStatus
from models.settings import Settings
from models.spec import JobSpec
from models.tables import Job

UPLOAD_PATHS = ("/v1/datasets",)  # streamed to disk, with their own limit (max_upload_bytes)


def serialize_submissions(session: Session, tenant: str) -> None:
    """Hold, until the transaction ends, a lock that every submission of ``tenant`` takes.

    It makes count-then-insert exact: two concurrent submits cannot both see
    room for one more job. Postgres: an advisory lock on the tenant, so other
    tenants do not wait. SQLite: the database's write lock (taken by a write
    that changes nothing; SQLite has one writer at a time anyway, and a
    transaction that holds the write lock reads the latest commit).
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"trainyard.submit:{tenant}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(update(Job).where(false()).values(status=Job.status),
                        execution_options={"synchronize_session": False})


def check_tenant_limits(session: Session, spec: JobSpec, samples: int, settings: Settings, tenant: str) -> None:
    """429 when the tenant already has too many queued jobs; 413 when the job is too big.

    Call it right before inserting the job, in the same transaction: it takes
    the tenant's submit lock (again, if the caller holds it already: that is
    free), so from here to the commit the cap is exact.
    """
    training = max(int(samples * (1 - spec.data.validation_split - spec.data.test_split)), 1)
    if spec.fit.epochs * training > settings.max_epoch_samples:
        raise PayloadTooLarge(
            f"the job would train {spec.fit.epochs} epochs x {training} samples = {spec.fit.epochs * training} "
            f"sample passes; the limit per job is {settings.max_epoch_samples}")
    serialize_submissions(session, tenant)
    queued = session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.queued)) or 0
    if queued >= settings.max_queued_jobs_per_tenant:
        raise TooManyRequests(
            f"tenant '{tenant}' already has {queued} queued jobs (the limit is {settings.max_queued_jobs_per_tenant}); "
            "wait for some to start, or cancel some")


class BodyLimit:
    """ASGI middleware: JSON bodies over ``limit`` bytes get 413 before any route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        body, more = b"", True
        while more:  # JSON bodies are small: read it all (up to the limit), then replay it
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _too_large(send, self.limit)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Callable[[Message], Awaitable[Any]], limit: int) -> None:
    import json

    payload = json.dumps({"error": {"code": "payload_too_large", "details": [],
                                    "message": f"the request body is larger than the limit of {limit} bytes"}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
