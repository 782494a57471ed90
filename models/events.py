"""Event payloads: what a job's event log, its SSE stream and its webhooks carry."""

from typing import Any

from models.enums import EventType
from models.tables import Job, JobEvent, SweepEvent


def status_payload(job: Job) -> dict[str, Any]:
    payload = {
        "job_id": job.id,
        "status": job.status.value,
        "stop_reason": job.stop_reason.value if job.stop_reason else None,
        "epoch": job.epoch,
        "epochs": job.epochs,
    }
    if job.cv_parent_id is not None:  # a fold's events name its run: a run's webhook receives both
        payload.update(cv_parent_id=job.cv_parent_id, fold=job.fold)
    return payload


def job_event(job: Job, type: EventType, **data: Any) -> JobEvent:
    """An event for ``job``; add it to the session that changes the job."""
    return JobEvent(job_id=job.id, type=type, data={**status_payload(job), **data})


def envelope(event: JobEvent) -> dict[str, Any]:
    """The JSON an SSE client and a webhook receiver both get for one event."""
    return {
        "id": event.id,
        "type": event.type.value,
        "job_id": event.job_id,
        "created_at": event.created_at.isoformat(),
        "data": event.data,
    }


def sweep_envelope(event: SweepEvent) -> dict[str, Any]:
    """The JSON a sweep's SSE client and its webhook receiver both get for one of its events."""
    return {"id": event.id, "type": event.type.value, "sweep_id": event.sweep_id,
            "created_at": event.created_at.isoformat(), "data": event.data}


# In distributed mode every insert into job_events sends a NOTIFY on this channel,
# payload the job id, when its transaction commits: a trigger (migration
# 0007e_event_notify), so no writer can forget it. The API's streams listen on it.
EVENTS_CHANNEL = "trainyard_job_events"

TERMINAL_EVENTS = frozenset({EventType.succeeded, EventType.failed, EventType.cancelled})
