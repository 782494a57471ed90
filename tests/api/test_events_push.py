"""Live events pushed by Postgres NOTIFY: delivered on commit without a poll, never on
rollback, and still after the listener's connection is killed or the server restarts.

The app here polls once an hour, so within a test only a NOTIFY (or the catch-up
read when the listener reconnects) can deliver an event.
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from api.services.event_listener import PgListener
from api.services.events import EventHub
from api.validation.pool import ProcessPool
from cli.sse import ServerEvent, parse
from models.db import make_engine, make_session_factory
from models.enums import EventType, JobStatus
from models.events import job_event
from models.tables import Job
from tests.api.hub_helpers import frame_ids, ids_of, serving, until
from tests.conftest import PG_SERVER
from tests.servers import PostgresServer
from tests.specs import IRIS_MLP
from tests.worker.conftest import insert_job

NEVER_S = 3600.0


def add_event(factory: sessionmaker[Session], job_id: str, type: EventType, *, commit: bool = True) -> int:
    with factory() as session:
        job = session.get_one(Job, job_id)
        if type in (EventType.succeeded, EventType.failed, EventType.cancelled):
            job.status = JobStatus(type.value.removeprefix("job."))
        event = job_event(job, type)
        session.add(event)
        session.flush()
        (session.commit if commit else session.rollback)()
        return event.id


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@dataclass
class Pushed:
    client: TestClient
    factory: sessionmaker[Session]

    @property
    def hub(self) -> EventHub:
        return self.client.app.state.event_hub

    @property
    def listener(self) -> PgListener:
        return self.client.app.state.event_listener

    def running_job(self) -> tuple[str, int]:
        job_id = insert_job(self.factory, IRIS_MLP, status=JobStatus.running)
        return job_id, add_event(self.factory, job_id, EventType.started)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[Pushed]:
    with serving(tmp_path_factory.mktemp("push"), validator_pool, NEVER_S) as (client, factory):
        state = Pushed(client, factory)
        wait_until(lambda: state.listener.pid is not None)
        yield state


def next_event(lines: Iterator[str]) -> ServerEvent:
    return next(parse(lines))


@contextmanager
def ends_after(factory: sessionmaker[Session], job_id: str, seconds: float = 30.0) -> Iterator[None]:
    """If the test has not finished within ``seconds``, the job ends: a read that would
    wait forever gets the job's last event instead, and the test fails, not hangs."""
    timer = threading.Timer(seconds, add_event, (factory, job_id, EventType.cancelled))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def test_a_committed_event_reaches_the_stream_without_waiting_for_a_poll(pushed: Pushed):
    job_id, started = pushed.running_job()
    with ends_after(pushed.factory, job_id), pushed.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        lines = response.iter_lines()
        assert int(next_event(lines).id) == started
        wakes = pushed.hub.counts.wakes
        epoch = add_event(pushed.factory, job_id, EventType.epoch)
        assert int(next_event(lines).id) == epoch  # an hour's poll interval: only the NOTIFY brought it
        assert pushed.hub.counts.wakes == wakes + 1


def test_a_rolled_back_event_sends_nothing_and_is_never_delivered(pushed: Pushed):
    job_id, started = pushed.running_job()
    other, _ = pushed.running_job()  # not watched: its notification marks where the others stand
    received: list[str] = []
    hub_notify = pushed.hub.notify

    def recording(job: str) -> None:
        received.append(job)
        hub_notify(job)

    pushed.hub.notify = recording  # the listener calls hub.notify for each notification
    try:
        with ends_after(pushed.factory, job_id), pushed.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            lines = response.iter_lines()
            assert int(next_event(lines).id) == started
            add_event(pushed.factory, job_id, EventType.epoch, commit=False)
            committed = add_event(pushed.factory, job_id, EventType.epoch)
            add_event(pushed.factory, other, EventType.epoch)
            assert int(next_event(lines).id) == committed
            # Notifications arrive in commit order: once the other job's has come, any
            # sent for the rolled-back insert would have come before it.
            wait_until(lambda: other in received)
            assert received.count(job_id) == 1
    finally:
        del pushed.hub.notify


def test_events_still_arrive_after_the_listeners_connection_is_killed(pushed: Pushed):
    job_id, started = pushed.running_job()
    with ends_after(pushed.factory, job_id), pushed.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        lines = response.iter_lines()
        assert int(next_event(lines).id) == started
        killed, connects = pushed.listener.pid, pushed.listener.connects
        admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed}).scalar()
        admin.dispose()
        # Committed while the listener is down or reconnecting: the catch-up read on reconnect delivers it.
        during = add_event(pushed.factory, job_id, EventType.epoch)
        assert int(next_event(lines).id) == during
        wait_until(lambda: pushed.listener.connects > connects and pushed.listener.pid is not None)
        assert pushed.listener.pid != killed and pushed.hub.pushed
        after = add_event(pushed.factory, job_id, EventType.epoch)  # pushed again, by NOTIFY
        assert int(next_event(lines).id) == after
        done = add_event(pushed.factory, job_id, EventType.succeeded)
        assert [int(e.id) for e in parse(lines)] == [done]


def test_a_database_restart_loses_no_event():
    """A private server (never the shared one), restarted while a client watches."""
    with PostgresServer.started() as server:
        url = server.create_database("trainyard_restart")
        engine = make_engine(url)  # pre-pings: the restart leaves stale pooled connections
        factory = make_session_factory(engine)
        job_id = insert_job(factory, IRIS_MLP, status=JobStatus.running)
        started = add_event(factory, job_id, EventType.started)
        hub = EventHub(factory, interval_s=NEVER_S)
        listener = PgListener(url, hub, retry_s=0.2, retry_max_s=1.0)

        async def scenario() -> list[int]:
            listener.start()
            stream = hub.stream(job_id, after=0, finished=False)
            try:
                await until(lambda: listener.pid is not None)
                seen = frame_ids(await asyncio.wait_for(anext(stream), 30))
                connects = listener.connects
                await asyncio.to_thread(server.stop, "fast")
                await until(lambda: not hub.pushed)  # the listener noticed: the reader polls meanwhile
                await asyncio.to_thread(server.start)
                during = await asyncio.to_thread(add_event, factory, job_id, EventType.epoch)
                await until(lambda: listener.connects > connects)
                done = await asyncio.to_thread(add_event, factory, job_id, EventType.succeeded)
                async with asyncio.timeout(30):
                    seen += await ids_of(stream)
                assert seen == [started, during, done]
                return seen
            finally:
                await stream.aclose()
                await listener.stop()
                await hub.close()

        try:
            assert asyncio.run(scenario())[-1] > started
        finally:
            engine.dispose()

