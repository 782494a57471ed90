"""GET /v1/jobs/{id}/events: history then live events, each once, resumable, one poll per job.

The stream's poller reads with the app's own sessions, so these tests commit
their rows, to a database of their own.
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.services.events import EventHub
from api.validation.pool import ProcessPool
from cli.sse import ServerEvent, parse
from models.enums import EventType, JobStatus
from models.events import job_event
from models.tables import Job
from tests.api.hub_helpers import frame_ids, ids_of, serving, until
from tests.specs import IRIS_MLP
from tests.worker.conftest import insert_job

POLL_S = 0.05


@dataclass
class Live:
    client: TestClient
    factory: sessionmaker[Session]

    def job(self, status: JobStatus = JobStatus.running) -> str:
        return insert_job(self.factory, IRIS_MLP, status=status)

    def event(self, job_id: str, type: EventType, **data) -> int:
        with self.factory() as session, session.begin():
            job = session.get_one(Job, job_id)
            if type in (EventType.succeeded, EventType.failed, EventType.cancelled):
                job.status = JobStatus(type.value.removeprefix("job."))
            event = job_event(job, type, **data)
            session.add(event)
            session.flush()
            return event.id

    @property
    def hub(self):
        return self.client.app.state.event_hub


@pytest.fixture(scope="module")
def live(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[Live]:
    with serving(tmp_path_factory.mktemp("sse"), validator_pool, POLL_S) as (client, factory):
        yield Live(client, factory)


def read(lines: Iterator[str], count: int) -> list[ServerEvent]:
    events = parse(lines)
    return [next(events) for _ in range(count)]


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_stream_replays_the_history_follows_live_events_and_ends_after_the_last(live: Live):
    job_id = live.job()
    queued, started = live.event(job_id, EventType.queued), live.event(job_id, EventType.started)

    with live.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        history = read(lines, 2)
        epochs = [live.event(job_id, EventType.epoch, metrics={"loss": 1 / e}) for e in (1, 2)]
        live_events = read(lines, 2)
        done = live.event(job_id, EventType.succeeded)
        rest = list(parse(lines))  # the stream ends by itself after the terminal event

    assert [e.id for e in history + live_events + rest] == [str(i) for i in (queued, started, *epochs, done)]
    assert [e.event for e in history + live_events + rest] == [
        "job.queued", "job.started", "job.epoch", "job.epoch", "job.succeeded"]
    body = live_events[1].json()
    assert body["id"] == epochs[1] and body["type"] == "job.epoch" and body["job_id"] == job_id
    assert body["data"]["metrics"] == {"loss": 0.5} and body["data"]["status"] == "running"
    wait_until(lambda: live.hub.clients(job_id) == 0)


def test_last_event_id_resumes_right_after_that_event(live: Live):
    job_id = live.job()
    ids = [live.event(job_id, t) for t in (EventType.queued, EventType.started, EventType.epoch, EventType.epoch)]
    ids.append(live.event(job_id, EventType.failed, error={"type": "ValueError", "message": "bad"}))

    def after(**request) -> list[int]:
        with live.client.stream("GET", f"/v1/jobs/{job_id}/events", **request) as response:
            return [int(e.id) for e in parse(response.iter_lines())]

    assert after() == ids
    assert after(headers={"Last-Event-ID": str(ids[1])}) == ids[2:]
    assert after(params={"last_event_id": ids[3]}) == ids[4:]
    # A browser reconnecting sends the header with the URL it first opened: the header wins.
    assert after(params={"last_event_id": ids[0]}, headers={"Last-Event-ID": str(ids[2])}) == ids[3:]
    assert after(headers={"Last-Event-ID": str(ids[4])}) == []


def test_a_reconnect_while_the_job_runs_misses_nothing_and_repeats_nothing(live: Live):
    job_id = live.job()
    first = live.event(job_id, EventType.started)
    with live.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        (seen,) = read(response.iter_lines(), 1)
    missed = [live.event(job_id, EventType.epoch, epoch=e) for e in (1, 2, 3)]  # while disconnected

    with live.client.stream("GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": seen.id}) as response:
        lines = response.iter_lines()
        caught_up = read(lines, 3)
        done = live.event(job_id, EventType.cancelled)
        rest = list(parse(lines))

    assert int(seen.id) == first
    assert [int(e.id) for e in caught_up + rest] == [*missed, done]


def test_many_clients_of_one_job_each_get_every_live_event(live: Live):
    job_id = live.job()
    live.event(job_id, EventType.started)
    clients = 6
    with ExitStack() as stack:
        streams = [stack.enter_context(live.client.stream("GET", f"/v1/jobs/{job_id}/events")).iter_lines()
                   for _ in range(clients)]
        for lines in streams:
            read(lines, 1)
        wait_until(lambda: live.hub.clients(job_id) == clients)
        epoch = live.event(job_id, EventType.epoch)
        assert all(int(read(lines, 1)[0].id) == epoch for lines in streams)
    wait_until(lambda: live.hub.clients(job_id) == 0)


def test_many_clients_of_one_job_share_one_poller_and_its_one_query(live: Live):
    job_id = live.job()
    started, done = live.event(job_id, EventType.started), live.event(job_id, EventType.succeeded)
    hub = EventHub(live.factory, interval_s=3600)  # one read per poll: no second poll within the test
    clients = 6

    async def watch() -> list[list[int]]:
        # Connected while the job ran, each after `started`: gather starts them all before the
        # poller that the first one creates reads (asyncio runs ready callbacks in FIFO order).
        async def one() -> list[int]:
            return await ids_of(hub.stream(job_id, after=started, finished=False))
        try:
            return await asyncio.gather(*(one() for _ in range(clients)))
        finally:
            await hub.close()

    assert asyncio.run(watch()) == [[done]] * clients
    # One read finds where the job stands, one page read is shared by the six: a
    # reader per client would have read twice each.
    assert hub.queries == 2
    assert hub.clients(job_id) == 0


def test_a_finished_job_is_replayed_without_a_poller(live: Live):
    job_id = live.job()
    ids = [live.event(job_id, EventType.started), live.event(job_id, EventType.succeeded)]
    with live.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert [int(e.id) for e in parse(response.iter_lines())] == ids
    assert live.hub.clients(job_id) == 0


def test_an_idle_stream_sends_keepalive_comments(live: Live):
    # FastAPI's own interval (15 s, the route's docstring says so): waited for, not patched.
    job_id = live.job()
    # If no ping came, the job's end would arrive first (and fail the test) instead of a hang.
    ends = threading.Timer(60, live.event, (job_id, EventType.succeeded))
    with live.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        ends.start()
        try:
            assert next(response.iter_lines()) == ": ping"
        finally:
            ends.cancel()


def test_errors_are_json_before_the_stream_starts(live: Live):
    response = live.client.get("/v1/jobs/job_nope/events")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    job_id = live.job()
    response = live.client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "abc"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "header.Last-Event-ID"


def test_many_clients_share_one_encoding_of_each_event(live: Live):
    job_id = live.job()
    started = live.event(job_id, EventType.started)
    hub = EventHub(live.factory, interval_s=3600)  # woken by hand below, as the listener would
    clients = 8

    async def watch() -> tuple[list[int], list[list[bytes]]]:
        async def one() -> list[bytes]:
            return [data async for data in hub.stream(job_id, after=started, finished=False)]
        try:
            streams = [asyncio.create_task(one()) for _ in range(clients)]
            await until(lambda: hub.clients(job_id) == clients and hub.queries == 1)  # joined, reader positioned
            later = await asyncio.to_thread(lambda: [live.event(job_id, EventType.epoch, epoch=e) for e in (1, 2, 3)])
            later.append(await asyncio.to_thread(live.event, job_id, EventType.succeeded))
            hub.notify(job_id)
            return later, await asyncio.gather(*streams)
        finally:
            await hub.close()

    later, received = asyncio.run(watch())
    assert [[i for data in got for i in frame_ids(data)] for got in received] == [later] * clients
    assert hub.counts.frames == len(later)  # not len(later) * clients
    # The very same bytes objects in every client's stream: encoded once, referenced by all.
    assert all(len(got) == len(later) and all(a is b for a, b in zip(got, received[0])) for got in received)


def test_history_is_replayed_in_pages_that_its_clients_share(live: Live):
    job_id = live.job()
    ids = [live.event(job_id, EventType.started)]
    ids += [live.event(job_id, EventType.epoch, epoch=e) for e in range(1, 24)]
    ids.append(live.event(job_id, EventType.succeeded))  # 25 events
    hub = EventHub(live.factory, interval_s=3600, page=10)

    async def replay(clients: int) -> list[list[int]]:
        async def one() -> list[int]:
            return await ids_of(hub.stream(job_id, after=0, finished=True))
        return await asyncio.gather(*(one() for _ in range(clients)))

    async def both() -> tuple[list[list[int]], list[list[int]]]:
        try:
            return await replay(5), await replay(3)
        finally:
            await hub.close()

    first, again = asyncio.run(both())
    assert first == [ids] * 5 and again == [ids] * 3
    # Pages of 10, 10 and 5 rows, read once for the five concurrent clients; the three
    # that came later got the same pages from the hub's cache (full, or ending the job).
    assert (hub.counts.queries, hub.counts.rows) == (3, 25)
    assert hub.counts.page_hits == 3 * 3


def test_a_client_that_falls_behind_is_dropped_with_its_backlog_and_resumes_from_its_last_event(live: Live):
    job_id = live.job()
    started = live.event(job_id, EventType.started)
    hub = EventHub(live.factory, interval_s=0.02, backlog=5)

    async def scenario() -> tuple[list[int], list[int]]:
        stalled = hub.stream(job_id, after=0, finished=False)
        try:
            seen = frame_ids(await anext(stalled))  # joined; then it stops reading
            epochs = [live.event(job_id, EventType.epoch, epoch=e) for e in range(1, 21)]
            await until(lambda: hub.counts.rows >= 1 + len(epochs))  # the reader handed all 20 on
            assert hub.queued(job_id) == 0  # the 6th overflowed the cap of 5: the backlog was freed
            rest = await ids_of(stalled)  # the stream ends, without the job's end
            assert rest == [] and hub.counts.dropped == 1 and hub.clients(job_id) == 0
            done = live.event(job_id, EventType.succeeded)
            resumed = await ids_of(hub.stream(job_id, after=seen[-1], finished=False))
            return resumed, [*epochs, done]
        finally:
            await stalled.aclose()
            await hub.close()

    resumed, expected = asyncio.run(scenario())
    assert resumed == expected
    assert started  # the one event the stalled client read
