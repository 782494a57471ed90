from enum import StrEnum


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class StopReason(StrEnum):
    completed = "completed"
    early_stopping = "early_stopping"
    diagnosis = "diagnosis"
    cancelled = "cancelled"
    error = "error"
    pruned = "pruned"  # a sweep's trial that its pruner judged worse than the others at the same epoch


class EventType(StrEnum):
    """What happened to a job; each is one row of ``job_events`` (the SSE stream
    and the webhook outbox read the same rows)."""

    queued = "job.queued"
    started = "job.started"
    epoch = "job.epoch"
    finding = "job.finding"
    succeeded = "job.succeeded"
    failed = "job.failed"
    cancelled = "job.cancelled"

    @classmethod
    def for_status(cls, status: JobStatus) -> "EventType":
        return {JobStatus.succeeded: cls.succeeded, JobStatus.failed: cls.failed,
                JobStatus.cancelled: cls.cancelled}[status]


class DeliveryOutcome(StrEnum):
    """What one webhook delivery row records."""

    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # another attempt is scheduled
    gave_up = "gave_up"  # the last attempt failed too
    skipped = "skipped"  # waited behind an event that was given up; never sent


class EnsembleStatus(StrEnum):
    """An ensemble is built once, on a worker: queued → running → succeeded | failed."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (EnsembleStatus.succeeded, EnsembleStatus.failed)


class TaskKind(StrEnum):
    """What a model predicts, as its loss says (``diagnosis.facts`` names the losses of each)."""

    classifier = "classifier"
    regression = "regression"
class SweepStatus(StrEnum):
    """A sweep: running while it may still start or wait for trials, then one of the ends."""

    running = "running"
    succeeded = "succeeded"  # every trial ended; at least one gave an objective
    failed = "failed"  # every trial ended without an objective
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self is not SweepStatus.running


class SweepEventType(StrEnum):
    """What happened to a sweep; each is one row of ``sweep_events`` (GET /v1/sweeps/{id}/events)."""

    trial_started = "trial.started"  # the driver queued the trial's job
    trial_finished = "trial.finished"  # told to Optuna: complete, or failed
    trial_pruned = "trial.pruned"  # told to Optuna as pruned (by the pruner or the diagnosis)
    best = "sweep.best"  # a complete trial better than every earlier one
    succeeded = "sweep.succeeded"
    failed = "sweep.failed"
    cancelled = "sweep.cancelled"

    @property
    def terminal(self) -> bool:
        return self in (SweepEventType.succeeded, SweepEventType.failed, SweepEventType.cancelled)
