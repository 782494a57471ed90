from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import job_queue
from migrations import upgrade
from models.db import make_engine, make_session_factory, utcnow
from models.enums import EventType, JobStatus
from models.events import job_event
from models.ids import new_id
from models.spec import JobSpec
from models.tables import Job
from tests.auth import new_key
from tests.conftest import create_database, drop_database
from tests.specs import IRIS_MLP


def insert_job(factory: sessionmaker[Session], body: dict[str, Any], **columns: Any) -> str:
    spec = JobSpec.model_validate(body)
    job_id = new_id("job")
    with factory() as session, session.begin():
        values = {"enqueued_at": utcnow(), "tenant": "default", **columns}
        session.add(Job(id=job_id, name=spec.name, spec=spec.model_dump(mode="json"), dataset_ref=spec.dataset,
                        epochs=spec.fit.epochs, findings=[], **values))
    return job_id


@dataclass(frozen=True)
class FinishedJob:
    url: str  # the database's
    factory: sessionmaker[Session]
    key: str  # an API key of the job's tenant
    job_id: str


@contextmanager
def finished_job_database(prefix: str, tenant: str = "acme",
                          events: tuple[EventType, ...] = (EventType.succeeded,)) -> Iterator[FinishedJob]:
    """A committed database of its own (for a real API server) holding one succeeded job of ``tenant``
    with ``events``, and a key of that tenant; dropped afterwards."""
    url = create_database(prefix)
    upgrade(url)
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        key = new_key(factory, tenant)
        job_id = insert_job(factory, IRIS_MLP, tenant=tenant, status=JobStatus.succeeded)
        with factory() as session, session.begin():
            job = session.get_one(Job, job_id)
            session.add_all([job_event(job, type) for type in events])
        yield FinishedJob(url, factory, key, job_id)
    finally:
        engine.dispose()
        drop_database(url)


class Sent(list[str]):
    """Stands for ``Sender.train``/``resume`` (``broker.tasks.SendJob``): the job ids sent, in order,
    and in ``queues`` the queue each went to."""

    def __init__(self, train_queue: str = "cpu") -> None:
        super().__init__()
        self.train_queue, self.queues = train_queue, []

    def __call__(self, job_id: str, resources: Mapping[str, Any] | None = None) -> None:
        self.append(job_id)
        self.queues.append(job_queue(self.train_queue, resources))


@pytest.fixture
def make_job(session_factory):
    return lambda body, **columns: insert_job(session_factory, body, **columns)


@pytest.fixture
def own_db(request) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A database of its own (URL, session factory): for tests that commit for real, from several
    connections and processes."""
    url = create_database(f"trainyard_{request.module.__name__.rpartition('.')[2].removeprefix('test_')}")
    upgrade(url)
    engine = make_engine(url)
    yield url, make_session_factory(engine)
    engine.dispose()
    drop_database(url)
