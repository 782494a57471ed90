"""The tables. They are storage, not API schemas: responses live in ``api/schemas``."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, JSONType, utcnow
from models.enums import (
    DeliveryOutcome,
    EnsembleStatus,
    EventType,
    JobStatus,
    StopReason,
    SweepEventType,
    SweepStatus,
    TaskKind,
)


def _enum(cls: type) -> Enum:
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Dataset(Base):
    __tablename__ = "datasets"
    # The same bytes may be uploaded by two tenants: one row each, one stored copy.
    __table_args__ = (UniqueConstraint("tenant", "sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # Relative to the artifact root; never taken from a request.
    path: Mapped[str] = mapped_column(String(255))
    # {"x": {"shape": [...], "dtype": "float32", "kind": "dense"}, ...}
    arrays: Mapped[dict[str, Any]]
    # Shapes, statistics, label counts, ... computed at upload: see datastore/describe.py.
    description: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sweep(Base):
    """A hyperparameter search: a base job spec, a search space over its paths, and the Optuna study
    (named by the sweep's id, in Optuna's own storage: sweeps/storage.py) that picks each trial's values.
    Its trials are ordinary jobs (``Job.sweep_id``); the request as accepted is ``request``
    (``models.sweep_spec.SweepRequest``), the base spec's seed fixed."""

    __tablename__ = "sweeps"
    __table_args__ = (Index("ix_sweeps_tenant_id", "tenant", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SweepStatus] = mapped_column(_enum(SweepStatus), default=SweepStatus.running)
    request: Mapped[dict[str, Any]]
    # How many trials it runs at most (max_trials, or the grid's size when smaller).
    trials_planned: Mapped[int]
    # The base spec's model summary (from the validator), for the preflight of each trial spec.
    summary: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class SweepEvent(Base):
    """An append-only log of a sweep's trials, in order. Written by the sweep driver under the sweep's
    lock (sweeps/driver.py), so a sweep's event ids grow in commit order: a stream's cursor is exact."""

    __tablename__ = "sweep_events"
    __table_args__ = (Index("ix_sweep_events_sweep_id_id", "sweep_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    type: Mapped[SweepEventType] = mapped_column(Enum(SweepEventType, native_enum=False, length=32,
                                                      values_callable=lambda e: [m.value for m in e]))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    # Lists are per tenant, newest first: (tenant, id) and (tenant, status, id) serve them (migration 0007f).
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"), Index("ix_jobs_tenant_id", "tenant", "id"),
                      Index("ix_jobs_tenant_status_id", "tenant", "status", "id"),
                      # One job per trial of a sweep: a driver that asks twice for one trial cannot make two.
                      UniqueConstraint("sweep_id", "trial_number"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.queued)
    stop_reason: Mapped[StopReason | None] = mapped_column(_enum(StopReason))
    spec: Mapped[dict[str, Any]]
    dataset_ref: Mapped[str] = mapped_column(String(64), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    # The first job of an auto-repair chain; every attempt of the chain carries it.
    repair_root_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # Cross-validation (data.folds): the run's parent row holds K in cv_folds and is never trained itself
    # (models/lifecycle.py derives its status from its folds); each fold job holds its parent and its
    # 0-based fold. Not parent_id, which is the retry chain.
    cv_folds: Mapped[int | None]
    cv_parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    fold: Mapped[int | None]
    # How a retry was made: {"finding": code, "suggestion": summary, "auto": bool} or {"patch": ...}.
    origin: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # A sweep's trial: the sweep and the number of its Optuna trial (sweeps/driver.py).
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id"), index=True)
    trial_number: Mapped[int | None]
    request_sha256: Mapped[str | None] = mapped_column(String(64))

    epoch: Mapped[int] = mapped_column(default=0)
    epochs: Mapped[int]
    last_metrics: Mapped[dict[str, Any] | None]
    best_metrics: Mapped[dict[str, Any] | None]
    test_metrics: Mapped[dict[str, Any] | None]
    findings: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    data_summary: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    model_path: Mapped[str | None] = mapped_column(String(255))

    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    # The fencing token: incremented by every claim (models/lifecycle.py); a worker's
    # writes hold only while the job is running under the token its claim returned.
    claim: Mapped[int] = mapped_column(default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(255))  # "host:pid" of the holder
    # The holder: host, pid, process start time, boot and pid namespace (models/holder.py).
    holder: Mapped[dict[str, Any] | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class EpochMetric(Base):
    """One row per (job, epoch): written with an upsert, so a redelivered task
    that trains an epoch again overwrites instead of duplicating the curve."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    duration_s: Mapped[float]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)



class JobEvent(Base):
    """An append-only log of what happened to each job, in order.

    Written in the same transaction as the change it describes, so it is never
    out of step with the job. Its id is the SSE event id (``Last-Event-ID``
    resumes after it) and the webhook outbox position.
    """

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    type: Mapped[EventType] = mapped_column(Enum(EventType, native_enum=False, length=32,
                                                 values_callable=lambda e: [m.value for m in e]))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookCursor(Base):
    """Where a job's webhook stands: one row per job that has a webhook.

    Events are delivered strictly in order: every event up to ``last_event_id``
    is delivered, given up, or not subscribed to. The lease makes one delivery
    task at a time work on a job; ``retry_at`` holds back the failing head event.
    """

    __tablename__ = "webhook_cursors"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Failed attempts at the event after last_event_id.
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One attempt to POST one event (or an event skipped after a give-up)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("job_events.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[EventType] = mapped_column(Enum(EventType, native_enum=False, length=32,
                                                       values_callable=lambda e: [m.value for m in e]))
    attempt: Mapped[int]
    outcome: Mapped[DeliveryOutcome] = mapped_column(_enum(DeliveryOutcome))
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float | None]
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]


class SweepWebhookCursor(Base):
    """Where a sweep's webhook stands (``WebhookCursor``'s twin for ``sweep_events``): one row per sweep
    that has a webhook; the same delivery code (``worker/webhooks.py``) moves both."""

    __tablename__ = "sweep_webhook_cursors"

    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]


class SweepWebhookDelivery(Base):
    """One attempt to POST one sweep event (or one skipped after a give-up)."""

    __tablename__ = "sweep_webhook_deliveries"
    __table_args__ = (Index("ix_sweep_webhook_deliveries_sweep_id_id", "sweep_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("sweep_events.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[SweepEventType] = mapped_column(Enum(SweepEventType, native_enum=False, length=32,
                                                            values_callable=lambda e: [m.value for m in e]))
    attempt: Mapped[int]
    outcome: Mapped[DeliveryOutcome] = mapped_column(_enum(DeliveryOutcome))
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float | None]
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]


class ApiKey(Base):
    """A tenant's API key. Only its SHA-256 is stored; the key is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # enough to recognise a key in a list
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]



class Ensemble(Base):
    """Finished jobs' models averaged into one (POST /v1/ensembles), built and evaluated on a worker.

    Its status changes in ``models.ensemble_lifecycle`` only; ``claim`` fences the worker's
    writes as a job's does, so a build taken over after its worker died writes nothing more.
    """

    __tablename__ = "ensembles"
    __table_args__ = (Index("ix_ensembles_tenant_id", "tenant", "id"), Index("ix_ensembles_status_id", "status", "id"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[EnsembleStatus] = mapped_column(_enum(EnsembleStatus), default=EnsembleStatus.queued)
    members: Mapped[list[str]] = mapped_column(JSONType)  # job ids, in the request's order
    dataset_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[TaskKind] = mapped_column(_enum(TaskKind))
    # {"held_out": {"part", "samples"}, "loss": name, "ensemble": metrics, "members": {job id: metrics}}
    result: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    model_path: Mapped[str | None] = mapped_column(String(255))

    attempts: Mapped[int] = mapped_column(default=0)
    claim: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(255))  # "host:pid" of the holder

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
