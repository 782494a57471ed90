import base64
import json
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import UnitOfWork, get_uow, unit_of_work
from api.tenancy import get_tenant, scope
from api.validation.pool import ProcessPool
from api.validation.spec_checks import spec_check_pool
from models.settings import Settings
from models.tables import Job
from tests.servers import wait_until

TENANT = "tenant-a"


@pytest.fixture(scope="session")
def validator_pool() -> Iterator[ProcessPool]:
    """The real validator pool (Keras in child processes), started once for every test
    that uses it: each child imports TensorFlow, which takes seconds."""
    pool = spec_check_pool(Settings())
    pool.start()
    yield pool
    pool.stop()


@pytest.fixture
def client(settings: Settings, db_session: Session, validator_pool: ProcessPool) -> Iterator[TestClient]:
    """The real app, its unit of work bound to the test's transaction and to one tenant.

    Authentication itself is tested against committed keys in test_tenancy.py.
    """
    app = create_app(settings, validator=validator_pool)
    scope(db_session, TENANT)  # the test's own reads see what the requests see

    def uow_in_test_transaction() -> Iterator[UnitOfWork]:
        yield from unit_of_work(db_session, TENANT)

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


def sent_tasks(redis_client: redis.Redis, queue: str) -> list[tuple[str, dict]]:
    """(task name, kwargs) of each message waiting in a Redis ``queue``, as Celery's JSON messages hold them."""
    messages = [json.loads(raw) for raw in redis_client.lrange(queue, 0, -1)]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[1]) for m in messages]


def job_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job)) or 0


def replaced(pool: ProcessPool, before: list[int]) -> list[int]:
    """The children once the pool has started the replacement of a dead one (it does so in the background)."""
    return wait_until(lambda: now if len(now := pool.pids()) == len(before) and now != before else None, 30,
                      f"the pool to replace a child of {before}")
