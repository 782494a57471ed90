from fastapi import APIRouter, Response

from api.deps import PageDep, QueueDep, SettingsDep, StoreDep, StudyStorageDep, UoW, ValidatorDep
from api.schemas.common import ListPage
from api.schemas.errors import error_responses
from api.schemas.sweeps import SWEEP_EXAMPLE, SWEEP_RULES, SweepOut, sweep_detail_out, sweep_out
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
