"""Limits on what one request and one tenant may ask for."""

from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, error_json
from models.settings import Settings
from models.spec import JobSpec

UPLOAD_PATHS = ("/v1/datasets",)  # streamed to disk, with their own limit (max_upload_bytes)


def check_tenant_limits(session: Session, spec: JobSpec, samples: int, settings: Settings, tenant: str) -> None:
    """413 when the job is too big. (The cap on a tenant's queued jobs is checked where the job
    is inserted, ``models.lifecycle.create``, so that it is exact and auto-retries obey it too.)"""
    training = max(spec.data.split_sizes(samples)[0], 1)  # as the worker will split
    if spec.fit.epochs * training > settings.max_epoch_samples:
        raise PayloadTooLarge(
            f"the job would train {spec.fit.epochs} epochs x {training} samples = {spec.fit.epochs * training} "
            f"sample passes; the limit per job is {settings.max_epoch_samples}")


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
            await _too_large(scope, receive, send, self.limit)
            return
        body, more = b"", True
        while more:  # JSON bodies are small: read it all (up to the limit), then replay it
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _too_large(scope, receive, send, self.limit)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    message = f"the request body is larger than the limit of {limit} bytes"
    await error_json(PayloadTooLarge.status_code, PayloadTooLarge.code, message)(scope, receive, send)
