"""The per-tenant cap of queued jobs is exact when submissions race: many threads,
each with its own session, released together by a barrier at ``lifecycle.create``,
on Postgres and on SQLite (the lock is ``lifecycle.lock_submissions``)."""

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.tenancy import scope
from migrations import upgrade
from models import lifecycle
from models.db import make_engine, make_session_factory, utcnow
from models.ids import new_id
from models.settings import Settings
from models.spec import JobSpec
from models.tables import Job
from tests.conftest import create_database, drop_database
from tests.specs import IRIS_MLP

CAP = 5
RACERS = 16


@pytest.fixture(params=["postgresql", "sqlite"])
def factory(request, tmp_path) -> Iterator[sessionmaker[Session]]:
    url = create_database("trainyard_cap") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'cap.db'}"
    upgrade(url)
    engine = make_engine(url, pool_size=RACERS, max_overflow=0)
    yield make_session_factory(engine)
    engine.dispose()
    if request.param == "postgresql":
        drop_database(url)


def new_job(tenant: str) -> Job:
    spec = JobSpec.model_validate(IRIS_MLP)
    return Job(id=new_id("job"), tenant=tenant, name="race", spec=IRIS_MLP, dataset_ref=spec.dataset,
               epochs=spec.fit.epochs, findings=[], created_at=utcnow())


def submit(factory: sessionmaker[Session], tenant: str, barrier: threading.Barrier, settings: Settings,
           outcomes: list[str]) -> None:
    with factory() as session:
        scope(session, tenant)
        barrier.wait(timeout=60)
        try:
            lifecycle.create(session, new_job(tenant), max_queued=settings.max_queued_jobs_per_tenant)
        except lifecycle.QueueFull:
            session.rollback()
            outcomes.append("429")
            return
        time.sleep(0.05)  # the rest of a submit before its commit (the window a race needs)
        session.commit()
        outcomes.append("202")


def test_racing_submissions_never_exceed_the_cap(factory: sessionmaker[Session], tmp_path):
    settings = Settings(data_dir=tmp_path, max_queued_jobs_per_tenant=CAP)
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []
    threads = [threading.Thread(target=submit, args=(factory, "racer", barrier, settings, outcomes))
               for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["202"] * CAP + ["429"] * (RACERS - CAP)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Job).where(Job.tenant == "racer")) == CAP


def test_the_lock_is_the_tenants_own(factory: sessionmaker[Session], tmp_path):
    """Postgres: while one submission of a tenant holds its lock, another of the same tenant
    waits, and one of another tenant goes through."""
    if factory.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time, whatever the tenant")
    with factory() as holder, factory() as same, factory() as other:
        for session, tenant in ((holder, "holder"), (same, "holder"), (other, "other")):
            scope(session, tenant)
            session.execute(text("SET LOCAL lock_timeout = '1s'"))
        lifecycle.lock_submissions(holder, "holder")  # held until its transaction ends
        lifecycle.lock_submissions(other, "other")
        with pytest.raises(OperationalError, match="lock timeout"):
            lifecycle.lock_submissions(same, "holder")
