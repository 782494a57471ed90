"""Retry a job with a fix applied: a finding's suggestion or a merge patch."""

from typing import Any

from pydantic import ValidationError

from api.deps import UnitOfWork
from api.errors import Invalid, detail, validation_details
from api.queue import TrainingQueue
from api.schemas.jobs import RetryRequest
from api.services.jobs import create_job, get_job
from api.validation.pool import ProcessPool
from datastore.artifacts import ArtifactStore
from diagnosis.patches import merge_patch
from models.settings import Settings
from models.spec import JobSpec
from models.tables import Job


def _patch_of(parent: Job, request: RetryRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """The patch to apply and the origin to record on the new job."""
    if request.patch is not None:
        return request.patch, {"patch": request.patch, "auto": False}
    assert request.finding is not None
    if request.finding >= len(parent.findings):
        raise Invalid("no such finding", [detail(("finding",), f"the job has {len(parent.findings)} findings. "
                                                              f"Received: finding={request.finding}")])
    suggestions = parent.findings[request.finding].get("suggestions", [])
    if request.suggestion >= len(suggestions):
        raise Invalid("no such suggestion", [detail(
            ("suggestion",),
            f"finding {request.finding} has {len(suggestions)} suggestions. "
            f"Received: suggestion={request.suggestion}")])
    chosen = suggestions[request.suggestion]
    origin = {"finding": parent.findings[request.finding]["code"], "suggestion": chosen["summary"], "auto": False}
    return chosen["patch"], origin


def retry_job(uow: UnitOfWork, job_id: str, request: RetryRequest, *, settings: Settings, queue: TrainingQueue,
              validator: ProcessPool, store: ArtifactStore,
              idempotency_key: str | None) -> tuple[Job, dict[str, Any] | None, bool]:
    """A new job from the parent's spec with the patch applied; ``parent_id`` links them.

    The parent's seed is kept (unless the patch changes it), so the two runs differ
    only by the fix.
    """
    parent = get_job(uow.session, job_id)
    patch, origin = _patch_of(parent, request)
    body = merge_patch(parent.spec, patch)
    body["force"] = request.force
    try:
        spec = JobSpec.model_validate(body)
    except ValidationError as exc:
        details = validation_details(list(exc.errors()))
        raise Invalid(f"the patched spec is invalid: {details[0]['path']}: {details[0]['message']}", details) from exc
    job, summary, new = create_job(uow, spec, settings=settings, queue=queue, validator=validator, store=store,
                                   idempotency_key=idempotency_key, parent_id=parent.id)
    if new:
        job.origin = origin
    return job, summary, new

