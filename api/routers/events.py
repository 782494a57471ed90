"""GET /v1/jobs/{id}/events: the job's events as Server-Sent Events."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.errors import Invalid, detail
from api.schemas.common import EVENT_ID_MAX
from api.schemas.errors import error_responses
from api.services.jobs import get_job
from api.stream_tokens import issue, verify
from api.tenancy import STREAM_GRANT_TENANT, Tenant, Unauthorized, scope

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@dataclass(frozen=True)
class StreamStart:
    job_id: str
    after: int
    finished: bool


def stream_grant(
    job_id: str,
    request: Request,
    token: Annotated[str | None, Query(max_length=512, description="a stream token (POST .../events:token), "
                                       "for an EventSource, which cannot send the Authorization header")] = None,
) -> None:
    """A valid token stands for the key: it names the tenant ``get_tenant`` then answers."""
    if token is None:
        return
    grant = verify(request.app.state.stream_secret, token, job_id)
    if grant is None:
        raise Unauthorized("the stream token is not valid for this job (expired, altered or another job's): "
                           "ask for a new one with POST /v1/jobs/{id}/events:token")
    setattr(request.state, STREAM_GRANT_TENANT, grant.tenant)


LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID", max_length=32,
                                                 description="resume after this event id")]
LastEventIdQuery = Annotated[int | None, Query(ge=0, le=EVENT_ID_MAX, description="the same, for clients that "
                                                                   "cannot set headers (curl scripts, links)")]


def resume_after(last_event_id_header: str | None, last_event_id: int | None) -> int:
    """The event id a stream starts after: ``Last-Event-ID`` (a browser's reconnect sends it: it wins over
    the original URL's query), else ``?last_event_id=``, else 0 (the whole history)."""
    if not last_event_id_header:
        return last_event_id or 0
    text = last_event_id_header.strip()  # ASCII digits only: "²".isdigit() too, and int() refuses it
    if not (text.isascii() and text.isdigit()) or int(text) > EVENT_ID_MAX:
        raise Invalid("Last-Event-ID is not an event id of this stream",
                      [detail(("header", "Last-Event-ID"), f"expected an integer. Received: {last_event_id_header!r}")])
    return int(text)


def stream_start(
    job_id: str,
    request: Request,
    _grant: Annotated[None, Depends(stream_grant)],  # before tenant: FastAPI solves them in this order
    tenant: Tenant,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
) -> StreamStart:
    """Checked before the stream starts, so an unknown job is a JSON 404, not an empty stream."""
    after = resume_after(last_event_id_header, last_event_id)
    # A session of its own, closed at once: a stream may last hours and must not hold a connection.
    with request.app.state.session_factory() as session:
        scope(session, tenant)  # another tenant's job is a 404 here too
        job = get_job(session, job_id)
        return StreamStart(job_id=job.id, after=after, finished=job.status.finished)


class EventStream(StreamingResponse):
    """``text/event-stream`` of bytes the hub encoded once for all its clients (FastAPI's own
    ``EventSourceResponse`` path would encode every message again for every client)."""

    media_type = "text/event-stream"


# One message of the stream, as SSE readers (and schemathesis) parse it: its fields, each a string.
MESSAGE_SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "event": {"type": "string"},
                                                   "data": {"type": "string"}}}


@router.get("/{job_id}/events", response_class=EventStream,
            summary="Live events (Server-Sent Events): status changes, epochs, findings",
            responses={**error_responses(404), 200: {"content": {"text/event-stream": {"schema": MESSAGE_SCHEMA}}}})
async def job_events(start: Annotated[StreamStart, Depends(stream_start)], request: Request) -> EventStream:
    """A `text/event-stream` of the job's events, oldest first, ending after the
    job's terminal event (`job.succeeded`, `job.failed`, `job.cancelled`).

    Each message has `id:` (the event id), `event:` (its type: `job.queued`,
    `job.started`, `job.epoch`, `job.finding`, ...) and `data:`, a JSON object
    `{"id", "type", "job_id", "created_at", "data"}` (the same body a webhook
    receives). Without `Last-Event-ID` the stream starts with the job's whole
    history; with it (or `?last_event_id=`), right after that event, so a
    client that reconnects misses nothing and gets nothing twice. A comment
    line (`: ping`) comes every 15 s while nothing happens. A client that falls
    far behind (its connection stalls) sees the stream end early: reconnecting
    with `Last-Event-ID`, as EventSource does by itself, resumes it.
    """
    hub = request.app.state.event_hub
    stream = hub.stream(start.job_id, after=start.after, finished=start.finished)
    return EventStream(stream, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class StreamToken(BaseModel):
    token: str = Field(description="opaque; valid for this job only, to start (or resume) its stream")
    expires_at: datetime = Field(description="a stream must start before this; an open one runs on")
    url: str = Field(description="the events URL with the token, for `new EventSource(url)`")


@router.post("/{job_id}/events:token", status_code=201, response_model=StreamToken,
             summary="A short-lived token for the events stream of this job (for EventSource)",
             responses=error_responses(404))
def events_token(job_id: str, request: Request, tenant: Tenant) -> StreamToken:
    """For a browser's `EventSource`, which cannot send the Authorization header:
    `new EventSource(url)` with the answer's `url` (`/v1/jobs/{id}/events?token=...`).
    The token is signed, names this job and your tenant, and expires after
    `TRAINYARD_STREAM_TOKEN_TTL_S` (300 s); an open stream runs on past that, but a
    reconnect needs a valid token: on the stream's `error`, close it, ask for a new token
    and open the new URL with `&last_event_id=` the last id seen. The API key never goes
    into a URL (nor into access logs, where `token=` is masked too).
    """
    with request.app.state.session_factory() as session:
        scope(session, tenant)  # another tenant's job is a 404
        job = get_job(session, job_id)
    token, grant = issue(request.app.state.stream_secret, tenant, job.id, request.app.state.settings.stream_token_ttl_s)
    return StreamToken(token=token, expires_at=datetime.fromtimestamp(grant.expires_at, UTC),
                       url=f"/v1/jobs/{job.id}/events?token={token}")
