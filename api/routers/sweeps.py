
from fastapi import APIRouter, Request, Response

from api.deps import PageDep, QueueDep, SettingsDep, StoreDep, StudyStorageDep, UoW, ValidatorDep
from api.routers.deliveries import EventIdFilter
from api.routers.events import MESSAGE_SCHEMA, EventStream, LastEventIdHeader, LastEventIdQuery, resume_after
from api.schemas.common import ListPage
from api.schemas.deliveries import SweepDeliveryOut
from api.schemas.errors import error_responses
from api.schemas.sweeps import SWEEP_EXAMPLE, SWEEP_RULES, SweepOut, sweep_detail_out, sweep_out
from api.services import deliveries, sweep_events
from api.services import sweeps as service
from models.sweep_spec import SweepRequest
from sweeps.report import report

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.post("", status_code=202, response_model=SweepOut, summary="Start a hyperparameter sweep",
             description="Checks the base spec and the search space, stores the sweep (its Optuna study in the "
                         "service's database) and queues its first trials (202, `Location: /v1/sweeps/{id}`).\n"
                         + SWEEP_RULES,
             responses=error_responses(400, 413, 429), openapi_extra=SWEEP_EXAMPLE)
def create_sweep(body: SweepRequest, uow: UoW, settings: SettingsDep, validator: ValidatorDep, queue: QueueDep,
                 store: StoreDep, storage: StudyStorageDep, response: Response) -> SweepOut:
    sweep = service.create_sweep(uow, body, settings=settings, queue=queue, validator=validator, store=store,
                                 storage=storage)
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    return sweep_detail_out(sweep, report(uow.session, storage, sweep, service.trial_jobs(uow, sweep.id)))


@router.get("", response_model=ListPage[SweepOut], summary="List sweeps, newest first", responses=error_responses())
def list_sweeps(uow: UoW, page: PageDep) -> ListPage[SweepOut]:
    sweeps = service.list_sweeps(uow, page)
    return ListPage(items=[sweep_out(sweep) for sweep in sweeps.items], next_cursor=sweeps.next_cursor)


@router.get("/{sweep_id}", response_model=SweepOut,
            summary="One sweep: its trials (parameters, status, objective, best epoch, verdict, stop reason), the "
                    "best trial, parameter importances and the time pruning saved",
            responses=error_responses(404))
def get_sweep(sweep_id: str, uow: UoW, storage: StudyStorageDep) -> SweepOut:
    sweep = service.get_sweep(uow, sweep_id)
    return sweep_detail_out(sweep, report(uow.session, storage, sweep, service.trial_jobs(uow, sweep_id)))


@router.post("/{sweep_id}/cancel", status_code=202, response_model=SweepOut,
             summary="Cancel: no more trials; queued trials at once, running ones within an epoch",
             responses=error_responses(404, 409))
def cancel_sweep(sweep_id: str, uow: UoW) -> SweepOut:
    return sweep_out(service.cancel_sweep(uow, sweep_id))


@router.get("/{sweep_id}/events", response_class=EventStream,
            summary="Live events (Server-Sent Events): trials started, finished, pruned; each new best",
            responses={**error_responses(404), 200: {"content": {"text/event-stream": {"schema": MESSAGE_SCHEMA}}}})
def sweep_events_stream(sweep_id: str, uow: UoW, request: Request, last_event_id_header: LastEventIdHeader = None,
                        last_event_id: LastEventIdQuery = None) -> EventStream:
    """A `text/event-stream` of the sweep's events, oldest first, ending after its last (`sweep.succeeded`,
    `sweep.failed`, `sweep.cancelled`): `trial.started` (its job queued: number, job_id, params),
    `trial.finished` and `trial.pruned` (told to Optuna: state, objective, best_epoch, stop_reason,
    stopped_by), `sweep.best` (a complete trial better than every earlier one). Messages as a job's stream
    sends them (`id:`, `event:`, `data:` JSON `{"id", "type", "sweep_id", "created_at", "data"}`);
    `Last-Event-ID` (or `?last_event_id=`) resumes after that event. A trial's epochs and findings are on
    its job's stream (GET /v1/jobs/{job_id}/events).
    """
    after = resume_after(last_event_id_header, last_event_id)
    service.get_sweep(uow, sweep_id)  # another tenant's sweep is a 404
    uow.session.commit()  # the stream reads with sessions of its own: hold no connection for its length
    events = sweep_events.stream(request.app.state.session_factory, sweep_id, after=after,
                                 interval_s=request.app.state.settings.events_poll_interval_s)
    return EventStream(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{sweep_id}/deliveries", response_model=ListPage[SweepDeliveryOut],
            summary="The sweep's webhook delivery attempts, newest first", responses=error_responses(404))
def list_deliveries(sweep_id: str, uow: UoW, page: PageDep, event_id: EventIdFilter = None
                    ) -> ListPage[SweepDeliveryOut]:
    rows = deliveries.list_sweep_deliveries(uow, sweep_id, page, event_id=event_id)
    return ListPage(items=[SweepDeliveryOut.model_validate(row, from_attributes=True) for row in rows.items],
                    next_cursor=rows.next_cursor)
