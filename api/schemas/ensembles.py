"""The ensemble schemas of the API, and the function that builds one from its row."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.jobs import JobError, Metrics
from models.enums import EnsembleStatus, TaskKind
from models.tables import Ensemble

MIN_MEMBERS, MAX_MEMBERS = 2, 20
JobId = Annotated[str, Field(min_length=1, max_length=64)]


class EnsembleRequest(BaseModel):
    """POST /v1/ensembles."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "example": {"jobs": ["job_0001", "job_0002", "job_0003"], "name": "three-mlps"}})

    jobs: list[JobId] = Field(min_length=MIN_MEMBERS, max_length=MAX_MEMBERS, description=(
        "the member jobs: succeeded jobs of yours with a saved model, trained on the same dataset, x and y, with "
        "the same input shape, output shape and kind (classifier or regression)"))
    name: str | None = Field(default=None, max_length=200)


class EnsembleHeldOut(BaseModel):
    part: Literal["test", "validation"] = Field(description=(
        "test: the members' common test part (every member has one); validation: their common validation part"))
    samples: int = Field(description="held-out samples that no member trained on, which every metric is taken on")


class MemberMetrics(BaseModel):
    job_id: str
    metrics: Metrics


class EnsembleMetrics(BaseModel):
    held_out: EnsembleHeldOut
    loss: str = Field(description="what `loss` is: cross-entropy of the probabilities (classifiers), or the "
                                  "members' loss (regression)")
    ensemble: Metrics
    members: list[MemberMetrics]


class EnsembleOut(BaseModel):
    id: str
    name: str | None
    status: EnsembleStatus
    kind: TaskKind
    dataset: str
    members: list[str]
    evaluation: EnsembleMetrics | None = Field(description=(
        "once built: the ensemble's and each member's metrics side by side, on the same held-out samples"))
    error: JobError | None
    model_available: bool
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def ensemble_out(ensemble: Ensemble) -> EnsembleOut:
    return EnsembleOut(
        id=ensemble.id, name=ensemble.name, status=ensemble.status, kind=ensemble.kind, dataset=ensemble.dataset_ref,
        members=ensemble.members, evaluation=EnsembleMetrics(**ensemble.result) if ensemble.result else None,
        error=JobError(**ensemble.error) if ensemble.error else None, model_available=ensemble.model_path is not None,
        attempts=ensemble.attempts, created_at=ensemble.created_at, started_at=ensemble.started_at,
        finished_at=ensemble.finished_at,
    )
