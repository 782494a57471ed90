"""Event payloads: what a job's event log, its SSE stream and its webhooks carry."""

from typing import Any

from models.enums import EventType
from models.tables import Job, JobEvent


def status_payload(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": job.status.value,
        "stop_reason": job.stop_reason.value if job.stop_reason else None,
        "epoch": job.epoch,
        "epochs": job.epochs,
    }


def job_event(job: Job, type: EventType, **data: Any) -> JobEvent:
    """An event for ``job``; add it to the session that changes the job."""
    return JobEvent(job_id=job.id, type=type, data={**status_payload(job), **data})
