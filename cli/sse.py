"""Reading a job's (or a sweep's) Server-Sent Events stream, reconnecting where it broke off."""

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

TERMINAL = ("job.succeeded", "job.failed", "job.cancelled")


@dataclass(frozen=True)
class ServerEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Events from the lines of a ``text/event-stream`` (the WHATWG rules the API needs)."""
    last_id: str | None = None
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:  # a blank line dispatches the event
            if data:
                yield ServerEvent(last_id, event or "message", "\n".join(data))
            event, data = None, []
            continue
        if line.startswith(":"):  # a comment: the keepalive
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value


class StreamError(Exception):
    """The API refused the stream (e.g. 404); ``response`` says why."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def follow(client: httpx.Client, job_id: str, *, last_event_id: str | None = None,
           reconnects: int = 8) -> Iterator[dict[str, Any]]:
    """The job's events as dicts, to its terminal event, reconnecting with
    ``Last-Event-ID`` when the connection drops (API restart, proxy timeout)."""
    return follow_stream(client, f"/v1/jobs/{job_id}/events", TERMINAL, last_event_id=last_event_id,
                         reconnects=reconnects)


def follow_stream(client: httpx.Client, path: str, terminal: tuple[str, ...], *, last_event_id: str | None = None,
                  reconnects: int = 8) -> Iterator[dict[str, Any]]:
    """The events of the stream at ``path`` (a job's, a sweep's) as dicts, to one of the ``terminal`` types."""
    failures = 0
    # Reads wait through the 15 s keepalives; a minute of silence means a dead connection.
    timeout = httpx.Timeout(10.0, read=60.0)
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        try:
            with client.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise StreamError(response)
                for event in parse(response.iter_lines()):
                    failures = 0
                    last_event_id = event.id or last_event_id
                    payload = event.json()
                    yield payload
                    if payload["type"] in terminal:
                        return
        except httpx.TransportError as exc:
            lost: Exception = exc
        else:  # the server closed the stream before the job finished
            lost = ConnectionError("the event stream ended before its last event")
        failures += 1
        if failures > reconnects:
            raise lost
        time.sleep(min(2.0 ** (failures - 1), 15.0))
