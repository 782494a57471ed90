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
