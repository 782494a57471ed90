"""Live job events for Server-Sent Events clients.

The worker writes ``job_events``; the API process reads them. One hub per API
process keeps one reader per watched job: it reads ``id > cursor`` and hands
each new event, encoded once (``event_frames.Frame``), to every client of that
job, so a job watched by a hundred dashboards costs one small indexed query per
wake-up, not a hundred, and one JSON encoding per event, not a hundred.

When does a reader read? In distributed mode a trigger NOTIFYs every committed
event (migration 0007e) and the process's one listener connection
(``event_listener.PgListener``) wakes the job's reader at once; while the
listener is down (the database restarts, the connection is killed) the readers
poll every ``interval_s``, and when it is back every reader reads once from its
cursor, so nothing committed meanwhile is missed. In embedded mode (SQLite, no
NOTIFY) and with push turned off, they poll.

Per job, event ids grow in commit order: every writer of an event holds the
job's row lock (it updates the job in the same transaction), so a reader that
has seen id N will never see a smaller id appear later. A cursor per job is
therefore exact, where one cursor for all jobs would not be.

Bounded memory: history is read in pages of ``page`` events, and the pages
that can no longer change (full, or ending with the job's last event) are
kept in a small LRU shared by every client replaying the same job, so three
hundred dashboards opening a finished job cost its pages once. A client's
backlog of live events is capped at ``backlog``: a client that falls further
behind (a stalled connection) is dropped, its backlog freed, and its stream
ends; EventSource reconnects with ``Last-Event-ID`` and replays from there.
Database reads run in threads of their own (``readers``), so a burst of
replays never takes the threads that serve the other routes.
"""

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.services.event_frames import PING, Frame, Page, frame, frame_terminal
from models.events import envelope
from models.tables import JobEvent

log = logging.getLogger(__name__)
PING_S = 15.0  # a comment line after this long without an event, for proxies that close idle connections
PUSH_SAFETY_S = 60.0  # while pushed, a reader still reads this often: a NOTIFY lost in a way not seen


@dataclass(eq=False)
class _Client:
    backlog: deque[Frame] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False  # fell too far behind: its stream ends, the client resumes with Last-Event-ID

    def offer(self, item: Frame, limit: int) -> None:
        if self.dropped:
            return
        if len(self.backlog) >= limit:
            self.backlog.clear()  # the memory goes now, not when the stalled connection finally closes
            self.dropped = True
        else:
            self.backlog.append(item)
        self.ready.set()


@dataclass(eq=False)
class _Watch:
    cursor: int | None = None  # the last event id handed to the clients; None until the first read
    positioned: asyncio.Event = field(default_factory=asyncio.Event)  # cursor is set
    clients: set[_Client] = field(default_factory=set)
    done: bool = False  # the job's terminal event was seen: nothing follows it
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass
class HubCounts:
    """What the hub did, for tests and the benchmark: each is a count since start."""

    queries: int = 0  # database reads
    rows: int = 0  # events read
    frames: int = 0  # events encoded (once each, whatever the number of clients)
    page_hits: int = 0  # pages served from the LRU without a read
    wakes: int = 0  # notifications that woke a watched job's reader
    dropped: int = 0  # clients dropped for falling behind


class EventHub:
    """Fans each job's new events out to its connected clients.

    Args:
        factory: sessions for the reads (short, one per query, in a thread).
        interval_s: how often a watched job is polled while events are not pushed.
        page: the most events one query returns; history and backlogs are read page by page.
        backlog: the most live events queued for one client before it is dropped.
        readers: threads for database reads, apart from the app's request threads.
        cached_pages: full pages kept for replays (memory: about ``cached_pages * page`` frames).
    """

    def __init__(self, factory: sessionmaker[Session], interval_s: float, *, page: int = 200,
                 backlog: int = 1000, readers: int = 4, cached_pages: int = 64) -> None:
        self.factory = factory
        self.interval_s = interval_s
        self.page = page
        self.backlog = backlog
        self.cached_pages = cached_pages
        self.counts = HubCounts()
        self.pushed = False  # a listener is connected: a committed event wakes its job's reader
        self._limiter = anyio.CapacityLimiter(readers)
        self._watches: dict[str, _Watch] = {}
        self._pages: OrderedDict[tuple[str, int], Page] = OrderedDict()
        self._reading: dict[tuple[str, int], asyncio.Task[Page]] = {}

    @property
    def queries(self) -> int:
        return self.counts.queries

    def clients(self, job_id: str) -> int:
        watch = self._watches.get(job_id)
        return len(watch.clients) if watch else 0

    def queued(self, job_id: str) -> int:
        """The longest backlog among the job's clients."""
        watch = self._watches.get(job_id)
        return max((len(c.backlog) for c in watch.clients), default=0) if watch else 0

    # --- wake-ups, from the listener ---

    def notify(self, job_id: str) -> None:
        """An event of ``job_id`` was committed: its reader reads now (nothing if nobody watches it)."""
        watch = self._watches.get(job_id)
        if watch is not None:
            self.counts.wakes += 1
            watch.wake.set()

    def set_pushed(self, pushed: bool) -> None:
        """The listener connected (True) or lost its connection (False).

        Either way every reader reads once now: after a reconnect, what was committed
        while no NOTIFY could arrive; after a loss, to fall back to polling at once.
        """
        self.pushed = pushed
        for watch in self._watches.values():
            watch.wake.set()

    # --- reads ---

    def _last(self, job_id: str) -> tuple[int, bool]:
        """The job's last event id (0: none yet), and whether it ends the job."""
        query = (select(JobEvent.id, JobEvent.type).where(JobEvent.job_id == job_id)
                 .order_by(JobEvent.id.desc()).limit(1))
        with self.factory() as session:
            row = session.execute(query).first()
        self.counts.queries += 1
        return (row.id, frame_terminal(row.type.value)) if row else (0, False)

    def _read(self, job_id: str, after: int) -> Page:
        query = (select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
                 .order_by(JobEvent.id).limit(self.page))
        with self.factory() as session:
            events = [envelope(event) for event in session.scalars(query)]
        self.counts.queries += 1
        self.counts.rows += len(events)
        self.counts.frames += len(events)
        return Page(frame(event) for event in events)  # encoded in the thread, off the event loop

    async def _fetch(self, key: tuple[str, int]) -> Page:
        page = await anyio.to_thread.run_sync(self._read, *key, limiter=self._limiter)
        if len(page) == self.page or (page and page[-1].terminal):  # it cannot change any more
            self._pages[key] = page
            while len(self._pages) > self.cached_pages:
                self._pages.popitem(last=False)
        return page

    async def _page(self, job_id: str, after: int, *, share: bool = True) -> Page:
        """The events after ``after``, at most ``page``: from the LRU, else read.

        ``share``: join a read of the same page already in flight. Not for a job's
        reader: a read that started before an event's commit may lack it, which a
        reader woken by that very commit must not take for an answer.
        """
        key = (job_id, after)
        cached = self._pages.get(key)
        if cached is not None:
            self._pages.move_to_end(key)
            self.counts.page_hits += 1
            return cached
        if not share:
            return await self._fetch(key)
        task = self._reading.get(key)
        if task is None:
            # A task of its own, so a client that leaves mid-read does not cancel it for the others.
            task = self._reading[key] = asyncio.create_task(self._fetch(key))
            task.add_done_callback(lambda done: self._read_done(key, done))
        return await asyncio.shield(task)

    def _read_done(self, key: tuple[str, int], task: asyncio.Task[Page]) -> None:
        self._reading.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have left

    async def _history(self, job_id: str, after: int, upto: int | None) -> AsyncIterator[Frame]:
        """Stored events after ``after`` (up to ``upto``), page by page: a client holds one page at a time.
        A ``Frame`` here may carry a whole page (its id and terminal flag: the page's last).

        Reads of the same page are shared. One that started before an event up to ``upto``
        was committed may end short of it: then the rest is read afresh, so a live client
        gets every event up to the cursor it joined at (or, the job deleted, an end).
        """
        fresh = False
        while True:
            page = await self._page(job_id, after, share=not fresh)
            if page and (upto is None or page[-1].id <= upto):
                yield page.whole  # the whole page at once: one write, not one per event
                after = page[-1].id
            else:
                for item in page:
                    if upto is not None and item.id > upto:
                        return
                    yield item
                    after = item.id
            if len(page) == self.page:
                continue
            if upto is None or after >= upto or fresh:
                return
            fresh = True

    # --- streams ---

    async def stream(self, job_id: str, *, after: int, finished: bool) -> AsyncIterator[bytes]:
        """The job's events after ``after`` as SSE messages, in order, each once, ending with its
        terminal event, with a ping comment after ``PING_S`` of silence.

        ``finished``: the job had already finished when the client connected, so
        every event is stored; they are replayed without starting a reader.
        The stream also ends, early, when the client fell ``backlog`` events behind.
        """
        if finished:
            async for item in self._history(job_id, after, None):
                yield item.data
                if item.terminal:
                    return
            return
        client = _Client()
        watch = self._join(job_id, client)
        last = after
        try:
            # A new job's reader starts at the job's last event. Whenever this client
            # joined, the reader hands it everything after watch.cursor as read here,
            # so the history below that (read in shared pages) completes it; a
            # reconnecting client catches up from the pages, not through its backlog.
            await watch.positioned.wait()
            caught_up_to = watch.cursor
            assert caught_up_to is not None
            if after < caught_up_to:
                async for item in self._history(job_id, after, caught_up_to):
                    yield item.data
                    last = item.id
                    if item.terminal:
                        return
            if watch.done and last >= watch.cursor:
                return
            while True:
                if not client.backlog:
                    if client.dropped:
                        return
                    client.ready.clear()
                    try:
                        async with asyncio.timeout(PING_S):
                            await client.ready.wait()
                    except TimeoutError:
                        yield PING
                    continue
                item = client.backlog.popleft()
                if item.id <= last:
                    continue  # a reconnecting client that is ahead of the reader
                yield item.data
                last = item.id
                if item.terminal:
                    return
        finally:
            self._leave(job_id, watch, client)

    def _join(self, job_id: str, client: _Client) -> _Watch:
        watch = self._watches.get(job_id)
        if watch is None:
            watch = self._watches[job_id] = _Watch()
            watch.task = asyncio.create_task(self._follow(job_id, watch), name=f"sse-follow-{job_id}")
        watch.clients.add(client)
        return watch

    def _leave(self, job_id: str, watch: _Watch, client: _Client) -> None:
        watch.clients.discard(client)
        client.backlog.clear()
        if client.dropped:
            self.counts.dropped += 1
        if not watch.clients and self._watches.get(job_id) is watch:
            del self._watches[job_id]
            if watch.task is not None:
                watch.task.cancel()

    async def _follow(self, job_id: str, watch: _Watch) -> None:
        """The job's reader: reads after the cursor when woken (or polled), hands each event to every client."""
        failures = 0
        while not watch.done:
            watch.wake.clear()  # before the read: a NOTIFY during the read wakes the next wait
            try:
                if watch.cursor is None:  # where the job stands; what follows comes with the next wake-up
                    watch.cursor, watch.done = await anyio.to_thread.run_sync(self._last, job_id,
                                                                              limiter=self._limiter)
                    watch.positioned.set()
                    page = Page()
                else:
                    page = await self._page(job_id, watch.cursor, share=False)
                failures = 0
            except Exception as exc:  # the database is away: the clients wait, the reader keeps trying
                failures += 1
                log.warning("reading events of job %s failed (%s); retrying", job_id, type(exc).__name__)
                await self._wait(watch, min(min(self.interval_s, 1.0) * 2**failures, 10.0))
                continue
            for item in page:
                watch.cursor = item.id
                for client in watch.clients:
                    client.offer(item, self.backlog)
                if item.terminal:
                    watch.done = True
            if len(page) == self.page or watch.done:
                continue  # a backlog: the next page at once
            await self._wait(watch, max(self.interval_s, PUSH_SAFETY_S) if self.pushed else self.interval_s)

    @staticmethod
    async def _wait(watch: _Watch, seconds: float) -> None:
        """Until the job's reader is woken (a NOTIFY, the listener coming or going), at most ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await watch.wake.wait()

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        self._watches.clear()
        self._pages.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
