"""GET /v1/jobs/{id}/deliveries: the record of a job's webhook delivery attempts."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PageDep, UoW
from api.schemas.common import EVENT_ID_MAX, ListPage
from api.schemas.deliveries import DeliveryOut
from api.schemas.errors import error_responses
from api.services import deliveries as service

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# ?event_id= on a job's and a sweep's list of delivery attempts.
EventIdFilter = Annotated[int | None, Query(ge=1, le=EVENT_ID_MAX, description="only this event's attempts")]


@router.get("/{job_id}/deliveries", response_model=ListPage[DeliveryOut],
            summary="Webhook delivery attempts, newest first", responses=error_responses(404))
def list_deliveries(job_id: str, uow: UoW, page: PageDep, event_id: EventIdFilter = None) -> ListPage[DeliveryOut]:
    deliveries = service.list_deliveries(uow.session, job_id, page, event_id=event_id)
    return ListPage(items=[DeliveryOut.model_validate(row, from_attributes=True) for row in deliveries.items],
                    next_cursor=deliveries.next_cursor)
