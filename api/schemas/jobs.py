from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from models.enums import JobStatus, StopReason


class Progress(BaseModel):
    epoch: int
    epochs: int


class Timings(BaseModel):
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queued_s: float | None = Field(description="created → started")
    running_s: float | None = Field(description="started → finished (or now)")


class JobError(BaseModel):
    type: str
    message: str


class JobOut(BaseModel):
    id: str
    name: str | None
    status: JobStatus
    stop_reason: StopReason | None
    dataset: str
    parent_id: str | None
    progress: Progress
    last_metrics: dict[str, Any] | None
    best_metrics: dict[str, Any] | None = Field(description="the epoch with the lowest val_loss (loss without validation)")
    test_metrics: dict[str, Any] | None
    findings: list[dict[str, Any]]
    data: dict[str, Any] | None = Field(description="split sizes and label counts, as trained")
    timings: Timings
    attempts: int
    error: JobError | None
    model_available: bool
    spec: dict[str, Any]


class ModelSummary(BaseModel):
    layers: list[dict[str, Any]]
    input_shape: list[Any]
    output_shape: list[Any]
    params: int
    trainable_params: int


class ValidationOut(BaseModel):
    valid: bool
    spec: dict[str, Any] = Field(description="the spec as it would run, defaults filled in")
    model: ModelSummary
    findings: list[dict[str, Any]]


class JobCreated(JobOut):
    model_summary: ModelSummary | None = None
