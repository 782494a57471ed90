"""A sweep's events (``sweep_events``, written by the sweep driver) as a Server-Sent Events stream.

Each message is encoded as a job's are (``event_frames.frame``: ``id:``, ``event:``, one line of
JSON ``{"id", "type", "sweep_id", "created_at", "data"}``). A sweep's event ids grow in commit order
(every writer holds the sweep's lock), so one cursor per stream misses nothing and repeats nothing.
The stream polls (``events_poll_interval_s``): a sweep's events come once per trial, not per epoch.
"""

import time
from collections.abc import AsyncIterator
from typing import NamedTuple

import anyio
import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.services.event_frames import PING, frame
from api.services.events import PING_S
from models.events import sweep_envelope
from models.tables import SweepEvent

PAGE = 200


class Message(NamedTuple):
    id: int
    data: bytes  # the SSE message
    terminal: bool  # the sweep's last event: the stream ends after it


def _read(factory: sessionmaker[Session], sweep_id: str, after: int) -> list[Message]:
    with factory() as session:
        rows = session.scalars(select(SweepEvent).where(SweepEvent.sweep_id == sweep_id, SweepEvent.id > after)
                               .order_by(SweepEvent.id).limit(PAGE)).all()
        return [Message(row.id, frame(sweep_envelope(row)).data, row.type.terminal) for row in rows]


async def stream(factory: sessionmaker[Session], sweep_id: str, *, after: int, interval_s: float
                 ) -> AsyncIterator[bytes]:
    """Every event after ``after``, then each new one as it commits; ends after the sweep's last."""
    cursor, quiet_since = after, time.monotonic()
    while True:
        messages = await anyio.to_thread.run_sync(_read, factory, sweep_id, cursor)
        for message in messages:
            yield message.data
            if message.terminal:
                return
            cursor = message.id
        if messages:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= PING_S:
            yield PING
            quiet_since = time.monotonic()
        if len(messages) < PAGE:
            await anyio.sleep(interval_s)
