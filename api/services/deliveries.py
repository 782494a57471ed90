"""The record of a job's webhook deliveries: every attempt, newest first (rows; the route builds the schemas)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import Page, Rows
from api.errors import Invalid, detail
from api.services.jobs import get_job
from models.tables import WebhookDelivery


def list_deliveries(session: Session, job_id: str, page: Page, *,
                    event_id: int | None = None) -> Rows[WebhookDelivery]:
    get_job(session, job_id)  # the lookup every read of a job goes through
    query = (select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)
             .order_by(WebhookDelivery.id.desc()).limit(page.limit + 1))
    if page.cursor:
        if not page.cursor.isdigit():
            message = f"expected the next_cursor of a previous page. Received: {page.cursor!r}"
            raise Invalid("the cursor is not one this list gave out", [detail(("query", "cursor"), message)])
        query = query.where(WebhookDelivery.id < int(page.cursor))
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    return page.of(session.scalars(query).all(), lambda delivery: str(delivery.id))
