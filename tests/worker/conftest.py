from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import job_queue
from migrations import upgrade
from models.db import make_engine, make_session_factory, utcnow
from models.ids import new_id
from models.spec import JobSpec
from models.tables import Job
from tests.conftest import create_database, drop_database


def insert_job(factory: sessionmaker[Session], body: dict[str, Any], **columns: Any) -> str:
    spec = JobSpec.model_validate(body)
    job_id = new_id("job")
    with factory() as session, session.begin():
        values = {"enqueued_at": utcnow(), "tenant": "default", **columns}
        session.add(Job(id=job_id, name=spec.name, spec=spec.model_dump(mode="json"), dataset_ref=spec.dataset,
                        epochs=spec.fit.epochs, findings=[], **values))
    return job_id


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
