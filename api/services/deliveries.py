"""The record of a job's (or a sweep's) webhook deliveries: every attempt, newest first (rows; the routes build
the schemas)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import Page, Rows, UnitOfWork
from api.errors import Invalid, detail
from api.services.jobs import get_job
from api.services.sweeps import get_sweep
from models.tables import SweepWebhookDelivery, WebhookDelivery


def list_deliveries(session: Session, job_id: str, page: Page, *,
                    event_id: int | None = None) -> Rows[WebhookDelivery]:
    get_job(session, job_id)  # the lookup every read of a job goes through
    return _page(session, WebhookDelivery, WebhookDelivery.job_id == job_id, page, event_id)


def list_sweep_deliveries(uow: UnitOfWork, sweep_id: str, page: Page, *,
                          event_id: int | None = None) -> Rows[SweepWebhookDelivery]:
    get_sweep(uow, sweep_id)  # 404 for another tenant's
    return _page(uow.session, SweepWebhookDelivery, SweepWebhookDelivery.sweep_id == sweep_id, page, event_id)


def _page(session: Session, table: Any, owned: Any, page: Page, event_id: int | None) -> Rows[Any]:
    query = select(table).where(owned).order_by(table.id.desc()).limit(page.limit + 1)
    if page.cursor:
        if not page.cursor.isdigit():
            message = f"expected the next_cursor of a previous page. Received: {page.cursor!r}"
            raise Invalid("the cursor is not one this list gave out", [detail(("query", "cursor"), message)])
        query = query.where(table.id < int(page.cursor))
    if event_id is not None:
        query = query.where(table.event_id == event_id)
    return page.of(session.scalars(query).all(), lambda delivery: str(delivery.id))
