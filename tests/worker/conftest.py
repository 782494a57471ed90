from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.db import utcnow
from models.ids import new_id
from models.spec import JobSpec
from models.tables import Job


def insert_job(factory: sessionmaker[Session], body: dict[str, Any], **columns: Any) -> str:
    spec = JobSpec.model_validate(body)
    job_id = new_id("job")
    with factory() as session, session.begin():
        values = {"enqueued_at": utcnow(), "tenant": "default", **columns}
        session.add(Job(id=job_id, name=spec.name, spec=spec.model_dump(mode="json"), dataset_ref=spec.dataset,
                        epochs=spec.fit.epochs, findings=[], **values))
    return job_id


@pytest.fixture
def make_job(session_factory):
    return lambda body, **columns: insert_job(session_factory, body, **columns)
