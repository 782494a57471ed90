"""Live job events for Server-Sent Events clients.

The worker writes ``job_events``; the API process reads them. One hub per API
process keeps one poller per watched job: it queries ``id > cursor`` once per
interval and hands each new event to every client of that job, so a job
watched by a hundred dashboards costs the database one small indexed query per
interval, not a hundred. It works the same in embedded mode (SQLite) and
distributed mode (Postgres), across any number of API and worker processes.

Per job, event ids grow in commit order: every writer of an event holds the
job's row lock (it updates the job in the same transaction), so a reader that
has seen id N will never see a smaller id appear later. A cursor per job is
therefore exact, where one cursor for all jobs would not be.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.events import TERMINAL_EVENTS, envelope
from models.tables import JobEvent

log = logging.getLogger(__name__)
TERMINAL_TYPES = frozenset(t.value for t in TERMINAL_EVENTS)
Event = dict[str, Any]


@dataclass
class _Watch:
    cursor: int  # the last event id handed to the clients
    clients: set[asyncio.Queue[Event]] = field(default_factory=set)
    done: bool = False  # the job's terminal event was seen: nothing follows it
    task: asyncio.Task[None] | None = None


class EventHub:
    """Fans each job's new events out to its connected clients.

    Args:
        factory: sessions for the reads (short, one per query, in a thread).
        interval_s: how often a watched job is polled.
        batch: the most events one query returns; a backlog is read in batches.
    """

    def __init__(self, factory: sessionmaker[Session], interval_s: float, batch: int = 500) -> None:
        self.factory = factory
        self.interval_s = interval_s
        self.batch = batch
        self.queries = 0  # reads issued, for tests and debugging
        self._watches: dict[str, _Watch] = {}

    def clients(self, job_id: str) -> int:
        watch = self._watches.get(job_id)
        return len(watch.clients) if watch else 0

    def _read(self, job_id: str, after: int, upto: int | None) -> list[Event]:
        self.queries += 1
        query = (select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
                 .order_by(JobEvent.id).limit(self.batch))
        if upto is not None:
            query = query.where(JobEvent.id <= upto)
        with self.factory() as session:
            return [envelope(event) for event in session.scalars(query)]

    async def _history(self, job_id: str, after: int, upto: int | None) -> AsyncIterator[Event]:
        """Stored events after ``after`` (up to ``upto``), batch by batch."""
        while True:
            events = await anyio.to_thread.run_sync(self._read, job_id, after, upto)
            for event in events:
                yield event
            if len(events) < self.batch:
                return
            after = events[-1]["id"]

    async def stream(self, job_id: str, *, after: int, finished: bool) -> AsyncIterator[Event]:
        """The job's events after ``after`` in order, each once, ending with its terminal event.

        ``finished``: the job had already finished when the client connected, so
        every event is stored; they are replayed without starting a poller.
        """
        if finished:
            async for event in self._history(job_id, after, None):
                yield event
                if event["type"] in TERMINAL_TYPES:
                    return
            return
        inbox: asyncio.Queue[Event] = asyncio.Queue()
        watch = self._join(job_id, after, inbox)
        # Nothing awaits between reading the cursor and joining: the poller hands
        # this client everything after watch.cursor, the history below the rest.
        caught_up_to = watch.cursor
        last = after
        try:
            if after < caught_up_to:
                async for event in self._history(job_id, after, caught_up_to):
                    yield event
                    last = event["id"]
                    if event["type"] in TERMINAL_TYPES:
                        return
            if watch.done and last >= watch.cursor:
                return
            while True:
                event = await inbox.get()
                if event["id"] <= last:
                    continue  # a reconnecting client that is ahead of the poller
                yield event
                last = event["id"]
                if event["type"] in TERMINAL_TYPES:
                    return
        finally:
            self._leave(job_id, watch, inbox)

    def _join(self, job_id: str, after: int, inbox: asyncio.Queue[Event]) -> _Watch:
        watch = self._watches.get(job_id)
        if watch is None:
            watch = self._watches[job_id] = _Watch(cursor=after)
            watch.task = asyncio.create_task(self._poll(job_id, watch), name=f"sse-poll-{job_id}")
        watch.clients.add(inbox)
        return watch

    def _leave(self, job_id: str, watch: _Watch, inbox: asyncio.Queue[Event]) -> None:
        watch.clients.discard(inbox)
        if not watch.clients and self._watches.get(job_id) is watch:
            del self._watches[job_id]
            if watch.task is not None:
                watch.task.cancel()

    async def _poll(self, job_id: str, watch: _Watch) -> None:
        failures = 0
        while not watch.done:
            try:
                events = await anyio.to_thread.run_sync(self._read, job_id, watch.cursor, None)
                failures = 0
            except Exception as exc:  # the database is away: the clients wait, the poller keeps trying
                failures += 1
                log.warning("polling events of job %s failed (%s); retrying", job_id, type(exc).__name__)
                await asyncio.sleep(min(self.interval_s * 2**failures, 10.0))
                continue
            for event in events:
                watch.cursor = event["id"]
                for inbox in watch.clients:
                    inbox.put_nowait(event)
                if event["type"] in TERMINAL_TYPES:
                    watch.done = True
            if len(events) < self.batch and not watch.done:
                await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
