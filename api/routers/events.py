"""GET /v1/jobs/{id}/events: the job's events as Server-Sent Events."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.errors import Invalid, detail
from api.schemas.common import EVENT_ID_MAX
from api.schemas.errors import error_responses
from api.services.jobs import get_job
from api.tenancy import Tenant, scope

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@dataclass(frozen=True)
class StreamStart:
    job_id: str
    after: int
    finished: bool


def stream_start(
    job_id: str,
    request: Request,
    tenant: Tenant,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32,
                                                       description="resume after this event id")] = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=EVENT_ID_MAX, description="the same, for clients that "
                                                                 "cannot set headers (curl scripts, links)")] = None,
) -> StreamStart:
    """Checked before the stream starts, so an unknown job is a JSON 404, not an empty stream."""
    after = last_event_id or 0
    if last_event_id_header:  # a browser's reconnect sends it: it wins over the original URL's query
        text = last_event_id_header.strip()  # ASCII digits only: "²".isdigit() too, and int() refuses it
        if not (text.isascii() and text.isdigit()) or int(text) > EVENT_ID_MAX:
            raise Invalid("Last-Event-ID is not an event id of this stream",
                          [detail(("header", "Last-Event-ID"),
                                  f"expected an integer. Received: {last_event_id_header!r}")])
        after = int(last_event_id_header)
    # A session of its own, closed at once: a stream may last hours and must not hold a connection.
    with request.app.state.session_factory() as session:
        scope(session, tenant)  # another tenant's job is a 404 here too
        job = get_job(session, job_id)
        return StreamStart(job_id=job.id, after=after, finished=job.status.finished)


class EventStream(StreamingResponse):
    """``text/event-stream`` of bytes the hub encoded once for all its clients (FastAPI's own
    ``EventSourceResponse`` path would encode every message again for every client)."""

    media_type = "text/event-stream"


@router.get("/{job_id}/events", response_class=EventStream,
            summary="Live events (Server-Sent Events): status changes, epochs, findings",
            responses=error_responses(404))
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
