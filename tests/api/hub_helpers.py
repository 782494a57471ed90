"""For the event stream tests: an app serving committed rows, and the hub's output read directly."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.validation.pool import ProcessPool
from migrations import upgrade
from models.db import make_engine, make_session_factory
from models.settings import Settings
from tests.auth import authorize
from tests.conftest import REDIS_URL, create_database, drop_database


def frame_ids(data: bytes) -> list[int]:
    """The ids of the SSE messages in one chunk of the hub's output (an event, or a page of them)."""
    ids = [int(line[4:]) for line in data.split(b"\n") if line.startswith(b"id: ")]
    assert ids and data.count(b"\n\n") == len(ids), data
    return ids


async def ids_of(stream: AsyncIterator[bytes]) -> list[int]:
    """The event ids of the rest of a hub stream, to its end."""
    return [i async for data in stream for i in frame_ids(data)]


async def until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@contextmanager
def serving(data_dir: Path, validator: ProcessPool,
            poll_s: float) -> Iterator[tuple[TestClient, sessionmaker[Session]]]:
    """The real app on a database of its own, whose rows the test commits (the hub reads
    with the app's own sessions), polling every ``poll_s``; the client holds a key."""
    url = create_database("trainyard_sse")
    upgrade(url)
    settings = Settings(data_dir=data_dir, database_url=url, broker_url=REDIS_URL,
                        train_queue=f"test-{uuid.uuid4().hex[:8]}", events_poll_interval_s=poll_s)
    engine = make_engine(url)
    try:
        with TestClient(create_app(settings, validator=validator)) as client:
            factory = make_session_factory(engine)
            authorize(client, factory)  # the tenant insert_job gives its jobs
            yield client, factory
    finally:
        engine.dispose()
        drop_database(url)
