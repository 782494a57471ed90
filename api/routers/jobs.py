import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse

from api.deps import PageDep, SettingsDep, UoW, ValidatorDep
from api.errors import Conflict, NotFound
from api.schemas.common import ErrorResponse, ListPage
from api.schemas.jobs import FindingsOut, JobCreated, JobOut, RetryRequest, ValidationOut
from api.services import jobs as service
from api.services import retry
from api.services.webhooks import public_spec
from datastore.artifacts import ArtifactStore
from models.enums import JobStatus
from models.spec import JobSpec
from models.tables import Job

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (404, 409, 413, 415, 422, 429)
}
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def _created(response: Response, job: Job, summary: dict[str, Any] | None, new: bool) -> JobCreated:
    """A 202 for a new job, or for the replay of one an Idempotency-Key already made."""
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not new:
        response.headers["Idempotent-Replayed"] = "true"
    return JobCreated(**service.job_out(job).model_dump(), model_summary=summary)


@router.post(":validate", response_model=ValidationOut, summary="Dry run: validate, check against Keras, summarize")
def validate_job(spec: JobSpec, uow: UoW, settings: SettingsDep, validator: ValidatorDep) -> ValidationOut:
    checked = service.check_job(uow.session, spec, settings, validator)
    return ValidationOut(
        valid=not any(f.severity == "error" for f in checked.findings),
        spec=public_spec(checked.spec.model_dump(mode="json")), model=checked.summary,
        findings=[f.as_json() for f in checked.findings],
    )


@router.post("", status_code=202, response_model=JobCreated, summary="Submit a training job")
def submit_job(
    spec: JobSpec, uow: UoW, settings: SettingsDep, validator: ValidatorDep, request: Request, response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    job, summary, new = service.create_job(
        uow, spec, settings=settings, queue=request.app.state.queue, validator=validator,
        idempotency_key=idempotency_key,
    )
    return _created(response, job, summary, new)


@router.get("", response_model=ListPage[JobOut], summary="List jobs, newest first")
def list_jobs(
    uow: UoW, page: PageDep, status: JobStatus | None = None, name: str | None = None,
    dataset: str | None = None, parent_id: str | None = None,
) -> ListPage[JobOut]:
    return service.list_jobs(uow.session, page, status=status, name=name, dataset=dataset, parent_id=parent_id)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, uow: UoW) -> JobOut:
    return retry.job_detail(uow.session, service.get_job(uow.session, job_id))


@router.get("/{job_id}/findings", response_model=FindingsOut, summary="The diagnosis: findings and the final verdict")
def get_findings(job_id: str, uow: UoW) -> FindingsOut:
    return retry.findings_of(service.get_job(uow.session, job_id))


@router.post("/{job_id}/retry", status_code=202, response_model=JobCreated,
             summary="A new job from this one with a finding's suggestion or a merge patch applied")
def retry_job(
    job_id: str, body: RetryRequest, uow: UoW, settings: SettingsDep, validator: ValidatorDep, request: Request,
    response: Response, idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    job, summary, new = retry.retry_job(uow, job_id, body, settings=settings, queue=request.app.state.queue,
                                        validator=validator, idempotency_key=idempotency_key)
    return _created(response, job, summary, new)


@router.get("/{job_id}/curves", summary="Per-epoch metrics, columnar JSON or CSV",
            responses={200: {"content": {"text/csv": {}}}})
def get_curves(job_id: str, uow: UoW, format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    columns = service.curves(uow.session, job_id)
    if format == "json":
        return columns
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}-curves.csv"'})


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut,
             summary="Cancel: a queued job at once, a running one within an epoch")
def cancel_job(job_id: str, uow: UoW) -> JobOut:
    return service.job_out(service.cancel_job(uow.session, job_id))


@router.get("/{job_id}/model", summary="The trained model (.keras)",
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_model(job_id: str, uow: UoW, settings: SettingsDep) -> FileResponse:
    job = service.get_job(uow.session, job_id)
    if job.model_path is None:
        if not job.status.finished:
            raise Conflict(f"job '{job_id}' is {job.status.value}; its model is saved when it finishes")
        raise NotFound(f"job '{job_id}' has no model ({job.status.value})")
    path = ArtifactStore(settings.artifacts).resolve(job.model_path)
    if not path.exists():
        raise NotFound(f"the model file of job '{job_id}' is missing from the artifact store")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{job_id}.keras")
