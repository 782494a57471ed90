"""The record of one webhook delivery attempt, as GET /v1/jobs/{id}/deliveries (and a sweep's) lists it."""

from datetime import datetime

from pydantic import BaseModel, Field

from models.enums import DeliveryOutcome, EventType, SweepEventType


class DeliveryOut(BaseModel):
    """One attempt to POST one event to the job's webhook."""

    id: int
    event_id: int = Field(description="the job event's id: the same as the SSE id and the Trainyard-Event-Id header")
    event_type: EventType
    attempt: int = Field(description="1 for the first try of this event; 0 for an event that was skipped")
    outcome: DeliveryOutcome = Field(description="delivered (2xx), failed (retried at next_attempt_at), "
                                                 "gave_up (the last attempt), skipped (waited behind a given-up event)")
    status_code: int | None = Field(description="the receiver's HTTP status; null when no answer came")
    error: str | None
    duration_ms: float | None
    attempted_at: datetime
    next_attempt_at: datetime | None


class SweepDeliveryOut(DeliveryOut):
    """One attempt to POST one of a sweep's own events to the sweep's webhook."""

    event_type: SweepEventType  # type: ignore[assignment]
