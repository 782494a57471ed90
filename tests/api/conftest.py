from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import UnitOfWork, get_uow
from api.tenancy import get_tenant, scope
from models.settings import Settings
from models.tables import Job


TENANT = "tenant-a"


@pytest.fixture
def client(settings: Settings, db_session: Session) -> Iterator[TestClient]:
    """The real app, its unit of work bound to the test's transaction and to one tenant.

    Authentication itself is tested against committed keys in test_tenancy.py.
    """
    app = create_app(settings, warm_keras=False)
    scope(db_session, TENANT)

    def uow_in_test_transaction() -> Iterator[UnitOfWork]:
        uow = UnitOfWork(db_session, TENANT)
        try:
            yield uow
            db_session.commit()
        except BaseException:
            db_session.rollback()
            raise
        for action in uow._after_commit:
            action()

    app.dependency_overrides[get_uow] = uow_in_test_transaction
    app.dependency_overrides[get_tenant] = lambda: TENANT
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def queued_messages(settings: Settings, redis_client: redis.Redis) -> Iterator[callable]:
    """How many training messages reached the broker's queue for this test."""
    key = settings.train_queue
    yield lambda: redis_client.llen(key)
    redis_client.delete(key)


def job_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job)) or 0
