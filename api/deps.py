"""Request-scoped dependencies: the unit of work, the validator pool and pagination."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from api.tenancy import Tenant, scope
from api.validation.pool import ProcessPool
from models.settings import Settings


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
        session.rollback()
        raise
    for action in uow._after_commit:
        action()


def get_uow(request: Request, tenant: Tenant) -> Iterator[UnitOfWork]:
    with request.app.state.session_factory() as session:
        yield from unit_of_work(session, tenant)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_validator(request: Request) -> ProcessPool:
    """The pool of validator processes that check specs with Keras (the API imports no TensorFlow)."""
    return request.app.state.validator


@dataclass(frozen=True)
class Page:
    limit: int
    cursor: str | None


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
SettingsDep = Annotated[Settings, Depends(get_settings)]
ValidatorDep = Annotated[ProcessPool, Depends(get_validator)]
