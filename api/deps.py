"""Request-scoped dependencies: admission to the database, the unit of work, the collaborators a route
calls (the queue, the artifact store, the validator pool), the settings and pagination.

The collaborators are built once by ``create_app`` and handed to routes here, so tests
replace one with ``app.dependency_overrides`` instead of assigning ``app.state``.
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from optuna.storages import RDBStorage
from sqlalchemy.orm import Session

from api.errors import Unavailable
from api.queue import TrainingQueue
from api.tenancy import Tenant, scope
from api.validation.pool import ProcessPool
from datastore.artifacts import ArtifactStore
from models.settings import Settings
from sweeps.storage import storage

log = logging.getLogger(__name__)


class Admission:
    """At most ``limit`` requests in database work at once, admitted in the event loop.

    A sync route and its sync session dependency each take a thread, and the
    request keeps its pooled connection between those steps. Were more requests
    let in than the pool holds, every thread could end up waiting in the pool
    for a connection that belongs to a request waiting for a thread: a deadlock
    that only the pool timeout breaks. Waiting here costs no thread and no
    connection; ``limit`` (Settings.db_admitted_requests) is below the pool's
    size and below the thread count, so an admitted request always finds both.

    Args:
        limit: requests admitted at once.
        timeout_s: the longest a request waits for a slot before it answers 503.
    """

    def __init__(self, limit: int, timeout_s: float) -> None:
        self.limit, self.timeout_s = limit, timeout_s
        # One semaphore per event loop (asyncio primitives belong to one loop; tests run several).
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        return slots

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        semaphore = self._semaphore()
        try:
            async with asyncio.timeout(self.timeout_s):
                await semaphore.acquire()
        except TimeoutError:
            log.warning("no database slot within %.1f s (%d requests admitted at once)", self.timeout_s, self.limit)
            raise Unavailable(f"the service is busy: no database slot within {self.timeout_s:g} s; "
                              "retry shortly") from None
        try:
            yield
        finally:
            semaphore.release()


async def admit(request: Request) -> AsyncIterator[None]:
    """Hold a database slot until the request's unit of work has finished."""
    async with request.app.state.admission.slot():
        yield


@dataclass
class UnitOfWork:
    """The request's session plus the work to do only once it has committed.

    Jobs enqueued during the request are sent after the commit and dropped on
    rollback, so a worker never receives an id the database does not hold.
    """

    session: Session
    tenant: str = ""
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)


def unit_of_work(session: Session, tenant: str) -> Iterator[UnitOfWork]:
    """Scope ``session`` to ``tenant``, yield the unit of work, then commit (or roll
    back on any exception) and run what waited for the commit."""
    scope(session, tenant)  # every query of jobs and datasets now sees this tenant's rows only
    uow = UnitOfWork(session, tenant)
    try:
        yield uow
        session.commit()
    except BaseException:
        try:
            session.rollback()
        except Exception as exc:  # noqa: BLE001  (the connection is gone: the error to report is the first one)
            log.warning("rollback failed: %s: %s", type(exc).__name__, exc)
        raise
    for action in uow._after_commit:
        action()


def get_uow(
    request: Request, _admitted: Annotated[None, Depends(admit, scope="function")], tenant: Tenant,
) -> Iterator[UnitOfWork]:
    """Admitted first (no thread, no connection held while waiting), then the key lookup, then the session."""
    with request.app.state.session_factory() as session:
        yield from unit_of_work(session, tenant)


def get_app_settings(request: Request) -> Settings:
    """The settings this app was created with (``create_app``); ``models.settings.get_settings``
    reads the environment, which a test's app or a second app need not match."""
    return request.app.state.settings


def get_validator(request: Request) -> ProcessPool:
    """The pool of validator processes that check specs with Keras (the API imports no TensorFlow)."""
    return request.app.state.validator


def get_queue(request: Request) -> TrainingQueue:
    """Where jobs are sent once their row has committed (``UnitOfWork.after_commit``)."""
    return request.app.state.queue


def get_store(request: Request) -> ArtifactStore:
    """The artifact store: datasets, uploads, checkpoints and trained models."""
    return request.app.state.store


def get_study_storage(request: Request) -> RDBStorage:
    """Optuna's storage, in the service's database (``sweeps/storage.py``): where sweeps' studies live."""
    return storage(request.app.state.settings.database_dsn)


T = TypeVar("T")


@dataclass(frozen=True)
class Rows(Generic[T]):
    """One page of a service's rows; the route turns it into a ``ListPage`` of schemas."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Page:
    limit: int
    cursor: str | None

    def of(self, rows: Sequence[T], cursor_of: Callable[[T], str]) -> Rows[T]:
        """The page out of ``rows`` queried with ``limit + 1``: the extra row says that more follow."""
        more = len(rows) > self.limit
        return Rows(list(rows[: self.limit]), cursor_of(rows[self.limit - 1]) if more else None)


def get_page(
    request: Request,
    limit: Annotated[int, Query(ge=1, description="items per page (capped by the server)")] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
) -> Page:
    return Page(min(limit, request.app.state.settings.page_size_max), cursor)


# scope="function": commit before the response is sent, so a client that got
# 202 can read the job at once, and a failed commit is an error response.
UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
PageDep = Annotated[Page, Depends(get_page)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ValidatorDep = Annotated[ProcessPool, Depends(get_validator)]
QueueDep = Annotated[TrainingQueue, Depends(get_queue)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
StudyStorageDep = Annotated[RDBStorage, Depends(get_study_storage)]
