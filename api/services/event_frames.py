"""A job event as the bytes of one Server-Sent Events message, built once per event.

Every client of a job is sent the same ``Frame`` object: the JSON is encoded once
however many streams carry it, and a client's backlog holds references, not copies.
"""

import json
import math
from functools import cached_property
from typing import Any, NamedTuple

from models.events import TERMINAL_EVENTS

TERMINAL_TYPES = frozenset(t.value for t in TERMINAL_EVENTS)
PING = b": ping\n\n"  # a comment line: EventSource ignores it, proxies see traffic


class Frame(NamedTuple):
    id: int  # the event id, the stream's Last-Event-ID
    terminal: bool  # the job's last event: the stream ends after it
    data: bytes  # "id: ...\nevent: ...\ndata: {json}\n\n"


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers and a browser's JSON.parse refuses them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def frame_terminal(event_type: str) -> bool:
    return event_type in TERMINAL_TYPES


def frame(event: dict[str, Any]) -> Frame:
    """``event``: an envelope (models/events.py), the body a webhook receiver gets too."""
    try:
        data = json.dumps(event, allow_nan=False)
    except ValueError:
        data = json.dumps(_finite(event))
    # json.dumps escapes newlines, so the data is one line; the type is an EventType value.
    text = f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"
    return Frame(event["id"], frame_terminal(event["type"]), text.encode())


class Page(list[Frame]):
    """Events read in one query, in id order."""

    @cached_property
    def whole(self) -> Frame:
        """The page as one message chunk: one write per page for a client replaying history,
        joined once however many clients replay it."""
        return Frame(self[-1].id, self[-1].terminal, b"".join(item.data for item in self))
