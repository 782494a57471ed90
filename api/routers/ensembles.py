"""``/v1/ensembles``: finished jobs' models averaged into one, evaluated where no member trained."""

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from api.deps import PageDep, QueueDep, SettingsDep, StoreDep, UoW, ValidatorDep
from api.schemas.common import ListPage
from api.schemas.ensembles import EnsembleOut, EnsembleRequest, ensemble_out
from api.schemas.errors import error_responses
from api.services import ensembles as service

router = APIRouter(prefix="/v1/ensembles", tags=["ensembles"])


@router.post("", status_code=202, response_model=EnsembleOut, summary="Average finished jobs' models into one",
             description="Queues the build (202, `Location: /v1/ensembles/{id}`) of an ensemble of 2 to 20 succeeded "
                         "jobs: one model that averages the members' predictions (class probabilities for "
                         "classifiers; a member that outputs logits gets its softmax or sigmoid first, and each "
                         "member keeps its own `scale_x`). A worker evaluates it and every member on the samples no "
                         "member trained on: their common test part when each has one, else their common "
                         "validation part. 422 at `jobs[i]` for a member that is not yours, not succeeded, or does "
                         "not fit the first member (dataset, data.x/y, kind, input or output shape), or when the "
                         "members share no held-out sample. 429 past `TRAINYARD_MAX_QUEUED_JOBS_PER_TENANT` "
                         "ensembles queued or being built.",
             responses=error_responses(400, 413, 429))
def create_ensemble(body: EnsembleRequest, uow: UoW, settings: SettingsDep, queue: QueueDep, store: StoreDep,
                    validator: ValidatorDep, response: Response) -> EnsembleOut:
    ensemble = service.create_ensemble(uow, body.jobs, body.name, settings=settings, queue=queue, store=store,
                                       validator=validator)
    response.headers["Location"] = f"/v1/ensembles/{ensemble.id}"
    return ensemble_out(ensemble)


@router.get("", response_model=ListPage[EnsembleOut], summary="List ensembles, newest first",
            responses=error_responses())
def list_ensembles(uow: UoW, page: PageDep) -> ListPage[EnsembleOut]:
    rows = service.list_ensembles(uow.session, page)
    return ListPage(items=[ensemble_out(e) for e in rows.items], next_cursor=rows.next_cursor)


@router.get("/{ensemble_id}", response_model=EnsembleOut, summary="One ensemble: status and held-out metrics",
            responses=error_responses(404))
def get_ensemble(ensemble_id: str, uow: UoW) -> EnsembleOut:
    return ensemble_out(service.get_ensemble(uow.session, ensemble_id))


@router.get("/{ensemble_id}/model", summary="The ensemble model (.keras, loads in safe mode)", response_class=Response,
            description="One `.keras` file: a functional model that takes raw x (each member's scaling is inside "
                        "it) and outputs the average of the members' probabilities (or predictions). 409 while it "
                        "is built; 404 when the build failed.",
            responses={200: {"description": "the .keras file", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                       **error_responses(404, 409)})
def download_model(ensemble_id: str, uow: UoW, store: StoreDep) -> FileResponse:
    path = service.model_file(service.get_ensemble(uow.session, ensemble_id), store)
    return FileResponse(path, media_type="application/octet-stream", filename=f"{ensemble_id}.keras")
