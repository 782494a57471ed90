"""The job schemas of the API, and the functions that build them from rows (the routes call them)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import Metrics
from api.schemas.cv import CvOut, FoldOut
from models.db import utcnow
from models.enums import JobStatus, StopReason
from models.findings import LEARNED, Finding, verdict_of
from models.tables import Job


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
    sweep_id: str | None = Field(default=None, description="the sweep this job is a trial of (GET /v1/sweeps/{id})")
    trial_number: int | None = Field(default=None, description="its trial's number in that sweep")
    progress: Progress
    last_metrics: Metrics | None
    best_metrics: Metrics | None = Field(
        description="the epoch with the lowest val_loss (loss without validation)")
    test_metrics: Metrics | None
    findings: list[Finding]
    data: dict[str, Any] | None = Field(description="split sizes and label counts, as trained; once trained, the speed "
                                                    "settings it ran with (speed) and warmup_s / train_s (timing)")
    timings: Timings
    attempts: int
    error: JobError | None
    model_available: bool
    spec: dict[str, Any]
    verdict: Finding | None = Field(default=None, description="the final verdict finding, once the job ended")
    origin: dict[str, Any] | None = Field(default=None, description=(
        "what made this job from its parent: {finding (code), suggestion (summary), auto} or {patch, auto}"))
    children: list[str] | None = Field(default=None, description="jobs retried from this one (GET one job only)")
    repair: "RepairChain | None" = Field(default=None, description="the auto-repair attempts this job belongs to")
    cv_folds: int | None = Field(default=None, description=(
        "K on a cross-validation run (data.folds): this job is the run's parent, never trained itself; its "
        "status follows its folds"))
    cv_parent_id: str | None = Field(default=None, description="on a fold job: its cross-validation run")
    fold: int | None = Field(default=None, description="on a fold job: its fold, 0 to K-1")
    folds: list[FoldOut] | None = Field(default=None, description="a cross-validation run's fold jobs "
                                                                  "(GET one job only)")
    cv: CvOut | None = Field(default=None, description="a cross-validation run's aggregate metrics (mean ± std "
                                                       "over its folds) and findings (GET one job only)")


class RepairAttempt(BaseModel):
    job_id: str
    status: JobStatus
    verdict: str | None
    learned: bool | None = Field(description="null while the attempt has not finished")
    applied: str | None = Field(description="the suggestion that made this attempt from the previous one")


class RepairChain(BaseModel):
    root_id: str
    attempts: list[RepairAttempt]
    learned_by: str | None = Field(description="the first attempt that learned, if any")


class RetryRequest(BaseModel):
    """Exactly one of ``finding`` (with ``suggestion``) or ``patch``."""

    # The one-of, stated in the schema too (pydantic checks it in _one_source): a source is
    # given when its key holds a value; null counts as absent. Inside an allOf, which means the
    # same: openapi-python-client reads a oneOf beside the properties as a union of its two
    # branches alone (suggestion and force lost, the patch branch not generated at all).
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "allOf": [{"oneOf": [{"required": ["finding"], "properties": {"finding": {"type": "integer"}}},
                             {"required": ["patch"], "properties": {"patch": {"type": "object"}}}]}],
        "examples": [{"finding": 0, "suggestion": 0}, {"patch": {"fit": {"epochs": 30}}}],
    })

    finding: int | None = Field(default=None, ge=0, description=(
        "index in the job's findings: the list of GET /v1/jobs/{id} and GET /v1/jobs/{id}/findings, "
        "the verdict included"))
    suggestion: int = Field(default=0, ge=0, description="index in that finding's suggestions")
    patch: dict[str, Any] | None = Field(default=None, description="a JSON merge patch (RFC 7386) of the spec")
    force: bool = Field(default=False, description="accept the new job despite error-severity preflight findings")

    @model_validator(mode="after")
    def _one_source(self) -> "RetryRequest":
        if (self.finding is None) == (self.patch is None):
            raise ValueError("give either finding (and suggestion) or patch")
        return self


class FindingsOut(BaseModel):
    job_id: str
    status: JobStatus
    # The same list, in the same order, as GET /v1/jobs/{id}'s findings (the verdict included):
    # retry's "finding": N indexes it, so N means one finding wherever it was read.
    findings: list[Finding] = Field(description="the job's findings, the verdict included; "
                                                "retry's `finding` is an index in this list")
    verdict: Finding | None = Field(description="the final verdict finding (also in findings), once ended")


class ModelSummary(BaseModel):
    layers: list[dict[str, Any]]
    input_shape: list[Any]
    output_shape: list[Any]
    params: int
    trainable_params: int
    memory: dict[str, int] | None = Field(default=None, description=(
        "estimated bytes of one training batch (batch_bytes: inputs_bytes + activations_bytes + weights_bytes) "
        "against what a worker offers (limit_bytes)"))


class ValidationOut(BaseModel):
    valid: bool
    spec: dict[str, Any] = Field(description="the spec as it would run, defaults filled in")
    model: ModelSummary
    findings: list[Finding]


class JobCreated(JobOut):
    model_summary: ModelSummary | None = None


JobOut.model_rebuild()

def public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the API shows it: without the webhook secret.

    Left out rather than masked, so a spec copied from a response and submitted
    again fails with "webhook.secret: Field required" instead of signing with
    a row of asterisks.
    """
    webhook = spec.get("webhook")
    if not webhook or "secret" not in webhook:
        return spec
    return {**spec, "webhook": {key: value for key, value in webhook.items() if key != "secret"}}


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def job_out(job: Job) -> JobOut:
    end = job.finished_at or (utcnow() if job.started_at else None)
    return JobOut(
        id=job.id, name=job.name, status=job.status, stop_reason=job.stop_reason, dataset=job.dataset_ref,
        parent_id=job.parent_id, sweep_id=job.sweep_id, trial_number=job.trial_number,
        progress=Progress(epoch=job.epoch, epochs=job.epochs), last_metrics=job.last_metrics,
        best_metrics=job.best_metrics, test_metrics=job.test_metrics, findings=job.findings, data=job.data_summary,
        timings=Timings(
            created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
            queued_s=_seconds(job.created_at, job.started_at), running_s=_seconds(job.started_at, end),
        ),
        attempts=job.attempts, error=JobError(**job.error) if job.error else None,
        model_available=job.model_path is not None, spec=public_spec(job.spec),
        verdict=verdict_of(job.findings), origin=job.origin,
        cv_folds=job.cv_folds, cv_parent_id=job.cv_parent_id, fold=job.fold,
    )


def _attempt(job: Job) -> RepairAttempt:
    verdict = verdict_of(job.findings)
    name = verdict["evidence"]["verdict"] if verdict else None
    applied = (job.origin or {}).get("suggestion")
    return RepairAttempt(job_id=job.id, status=job.status, verdict=name,
                         learned=None if name is None else name in LEARNED, applied=applied)


def job_detail_out(job: Job, *, children: list[str], repair_root_id: str | None, repair_chain: list[Job]) -> JobOut:
    """GET /v1/jobs/{id}: the job, with the jobs retried from it and its repair chain."""
    out = job_out(job)
    out.children = children
    if repair_root_id is not None:
        attempts = [_attempt(j) for j in repair_chain]
        out.repair = RepairChain(root_id=repair_root_id, attempts=attempts,
                                 learned_by=next((a.job_id for a in attempts if a.learned), None))
    return out


def findings_out(job: Job) -> FindingsOut:
    return FindingsOut(job_id=job.id, status=job.status, findings=list(job.findings), verdict=verdict_of(job.findings))


# GET /curves as JSON (a plain dict, declared here for clients generated from the document): one column per
# metric, one value per epoch; null where an epoch lacks a metric the others have. The same columns as text/csv
# are an operation of their own (/curves.csv): a generated client parses an answer by one media type only.
CURVES_SCHEMA = {
    "title": "Curves", "type": "object", "required": ["epoch", "duration_s"],
    "properties": {"epoch": {"type": "array", "items": {"type": "integer"}},
                   "duration_s": {"type": "array", "items": {"type": "number"}}},
    "additionalProperties": {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "null"}]}},
}

# What the OpenAPI document says about a spec beyond its schema (submit and :validate).
EXAMPLE_SPEC = {
    "name": "iris-mlp", "dataset": "builtin:iris",
    "data": {"validation_split": 0.2, "scale_x": "standardize", "one_hot": True},
    "model": {"input_shape": [4], "layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                                             {"type": "Dense", "units": 3, "activation": "softmax"}]},
    "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01}, "loss": "categorical_crossentropy",
                "metrics": ["accuracy"]},
    "fit": {"epochs": 20, "batch_size": 16},
    "seed": 1,
}
SPEC_EXAMPLE = {"requestBody": {"content": {"application/json": {"examples": {
    "iris": {"summary": "a small MLP on the built-in iris data", "value": EXAMPLE_SPEC}}}}}}

SPEC_RULES = """
The spec is checked in two steps. The schema below is its shape; what it
cannot express is checked against the installed Keras itself:

- `type` of a layer, and the names of optimizers, losses, metrics, callbacks,
  initializers, regularizers and activations, are Keras's own names (e.g.
  `Dense`, `Conv1D`, `Nadam`, `categorical_crossentropy`, `EarlyStopping`);
  the other keys of a layer are the arguments of that Keras class, checked
  against its signature. An unknown name or argument is a 422 naming the path
  (`model.layers[2].units`), with a "did you mean" hint.
- `model` is either `{"input_shape", "layers"}` or `{"keras": <model.to_json() dict>}`,
  loaded in Keras's safe mode (no Lambda, no custom code).
- `dataset` is an id from `POST /v1/datasets` or a built-in (`builtin:digits`, ...);
  `data.x`/`data.y` name its arrays.
- Unknown fields anywhere are a 422 (a stale `n_epoch` is never ignored).
"""
