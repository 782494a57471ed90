import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import FileResponse

from api.deps import PageDep, QueueDep, SettingsDep, StoreDep, UoW, ValidatorDep
from api.schemas.common import ListPage
from api.schemas.cv import cv_out
from api.schemas.errors import error_responses
from api.schemas.jobs import (
    CURVES_SCHEMA,
    SPEC_EXAMPLE,
    SPEC_RULES,
    FindingsOut,
    JobCreated,
    JobOut,
    RetryRequest,
    ValidationOut,
    findings_out,
    job_detail_out,
    job_out,
    public_spec,
)
from api.services import cv, retry
from api.services import jobs as service
from models.cv import run_aggregate
from models.enums import JobStatus
from models.spec import JobSpec
from models.tables import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255,
    description="a key of your choice: the same key with the same body answers the job it created (202, "
                "`Idempotent-Replayed: true`), with another body 409")]


def _created(response: Response, job: Job, summary: dict[str, Any] | None, new: bool) -> JobCreated:
    """A 202 for a new job, or for the replay of one an Idempotency-Key already made."""
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not new:
        response.headers["Idempotent-Replayed"] = "true"
    return JobCreated(**job_out(job).model_dump(), model_summary=summary)


@router.post(":validate", response_model=ValidationOut, summary="Dry run: validate, check against Keras, summarize",
             description="Validates the spec, runs the preflight checks and builds the model to summarize it; "
                         "trains nothing and stores nothing.\n" + SPEC_RULES,
             responses=error_responses(400, 413, 429), openapi_extra=SPEC_EXAMPLE)
def validate_job(spec: JobSpec, uow: UoW, settings: SettingsDep, validator: ValidatorDep, store: StoreDep,
                 ) -> ValidationOut:
    checked = service.check_job(uow.session, spec, settings, validator, store)
    return ValidationOut(
        valid=not any(f.severity == "error" for f in checked.findings),
        spec=public_spec(checked.spec.model_dump(mode="json")), model=checked.summary,
        findings=[f.as_json() for f in checked.findings],
    )


@router.post("", status_code=202, response_model=JobCreated, summary="Submit a training job",
             description="Queues the job (202, `Location: /v1/jobs/{id}`) with its preflight findings. "
                         "Error-severity findings reject it with 422 unless `\"force\": true`.\n" + SPEC_RULES,
             responses=error_responses(400, 409, 413, 429), openapi_extra=SPEC_EXAMPLE)
def submit_job(
    spec: JobSpec, uow: UoW, settings: SettingsDep, validator: ValidatorDep, queue: QueueDep, store: StoreDep,
    response: Response, idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    job, summary, new = service.create_job(
        uow, spec, settings=settings, queue=queue, validator=validator, store=store,
        idempotency_key=idempotency_key,
    )
    return _created(response, job, summary, new)


@router.get("", response_model=ListPage[JobOut], summary="List jobs, newest first", responses=error_responses())
def list_jobs(
    uow: UoW, page: PageDep, status: JobStatus | None = None, name: str | None = None,
    dataset: str | None = None, parent_id: str | None = None, sweep_id: str | None = None,
    cv_parent_id: Annotated[str | None, Query(description="the fold jobs of this cross-validation run")] = None,
) -> ListPage[JobOut]:
    jobs = service.list_jobs(uow.session, page, status=status, name=name, dataset=dataset, parent_id=parent_id,
                             cv_parent_id=cv_parent_id, sweep_id=sweep_id)
    return ListPage(items=[job_out(job) for job in jobs.items], next_cursor=jobs.next_cursor)


@router.get("/{job_id}", response_model=JobOut, summary="One job: status, progress, metrics, findings",
            responses=error_responses(404))
def get_job(job_id: str, uow: UoW) -> JobOut:
    job = service.get_job(uow.session, job_id)
    family = service.family_of(uow.session, job)
    out = job_detail_out(job, children=family.children, repair_root_id=family.repair_root_id,
                         repair_chain=family.repair_chain)
    if job.cv_folds is not None:
        folds = cv.folds_of(uow.session, job)
        out.folds, out.cv = cv_out(folds, run_aggregate(job, folds))
    return out


@router.get("/{job_id}/findings", response_model=FindingsOut, summary="The diagnosis: findings and the final verdict",
            responses=error_responses(404))
def get_findings(job_id: str, uow: UoW) -> FindingsOut:
    return findings_out(service.get_job(uow.session, job_id))


@router.post("/{job_id}/retry", status_code=202, response_model=JobCreated,
             summary="A new job from this one with a finding's suggestion or a merge patch applied",
             description="The body holds exactly one of the two sources: `finding` (the index of one of this "
                         "job's findings, as GET /v1/jobs/{id} and GET /findings list them, verdict included, "
                         "with `suggestion`, the index of one of its suggestions, default 0) "
                         "or `patch` (a JSON merge patch, RFC 7386, of this job's spec). Both or neither is a "
                         "422. The new job's `parent_id` is this job.",
             responses=error_responses(400, 404, 409, 413, 429))
def retry_job(
    job_id: str, body: RetryRequest, uow: UoW, settings: SettingsDep, validator: ValidatorDep, queue: QueueDep,
    store: StoreDep, response: Response, idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    job, summary, new = retry.retry_job(uow, job_id, body, settings=settings, queue=queue, store=store,
                                        validator=validator, idempotency_key=idempotency_key)
    return _created(response, job, summary, new)


@router.get("/{job_id}/curves", summary="Per-epoch metrics, columnar JSON",
            description="`{\"epoch\": [...], \"loss\": [...], \"val_loss\": [...], ...}`; the same columns as CSV "
                        "at `/curves.csv`.",
            responses={200: {"description": "the curves", "content": {"application/json": {"schema": CURVES_SCHEMA}}},
                       **error_responses(404)})
def get_curves(job_id: str, uow: UoW,
               format: Annotated[str, Query(pattern="^(json|csv)$", include_in_schema=False)] = "json") -> Any:
    # ?format=csv was the CSV's first address; kept for the scripts that use it, and out of the document:
    # a generated client takes one media type per answer, and parsed this one's CSV as JSON.
    return get_curves_csv(job_id, uow) if format == "csv" else service.curves(uow.session, job_id)


@router.get("/{job_id}/curves.csv", summary="Per-epoch metrics as CSV",
            description="The columns of `/curves` as CSV: a header row, one row per epoch.",
            response_class=Response,
            responses={200: {"description": "the curves", "content": {"text/csv": {"schema": {"type": "string"}}}},
                       **error_responses(404)})
def get_curves_csv(job_id: str, uow: UoW) -> Response:
    columns = service.curves(uow.session, job_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}-curves.csv"'})


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut,
             summary="Cancel: a queued job at once, a running one within an epoch",
             description="On a cross-validation run (its parent job), every unfinished fold is cancelled; the run "
                         "ends cancelled once its folds have.",
             responses=error_responses(404, 409))
def cancel_job(job_id: str, uow: UoW) -> JobOut:
    return job_out(service.cancel_job(uow.session, job_id))


@router.get("/{job_id}/model", summary="The trained model (.keras)", response_class=Response,
            description="The `.keras` file of a finished job. 409 while the job is queued or running; 404 for "
                        "a job that finished without a model.",
            responses={200: {"description": "the .keras file", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                       **error_responses(404, 409)})
def download_model(job_id: str, uow: UoW, store: StoreDep) -> FileResponse:
    path = service.model_file(service.get_job(uow.session, job_id), store)
    return FileResponse(path, media_type="application/octet-stream", filename=f"{job_id}.keras")
