"""What a finished trial job tells its Optuna trial: the objective, its best epoch, the state, and why
it stopped. Read from the job's row and its curve, so the driver (which tells) and the API (which
shows the trials) agree."""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState

from models.enums import JobStatus, StopReason
from models.sweep_spec import Objective
from models.tables import EpochMetric, Job

# Stops that judged the trial doomed: Optuna records them as pruned (its state for "stopped early").
PRUNED_STOPS = (StopReason.pruned, StopReason.diagnosis)


@dataclass(frozen=True)
class Best:
    value: float | None  # None: the metric never had a finite value
    epoch: int | None


def best(curve: Iterable[EpochMetric], objective: Objective) -> Best:
    """The best value of the objective's metric over the recorded epochs, and its epoch."""
    sign = 1.0 if objective.direction == "minimize" else -1.0
    found = Best(None, None)
    for row in curve:
        value = row.metrics.get(objective.metric)
        if value is None or not math.isfinite(value):
            continue
        if found.value is None or sign * value < sign * found.value:
            found = Best(float(value), row.epoch)
    return found


def stopped_by(job: Job) -> str | None:
    """The finding that stopped a trial stopped by the diagnosis (the first raised of its stop_on codes)."""
    if job.stop_reason is not StopReason.diagnosis:
        return None
    stop_on = set(job.spec.get("diagnosis", {}).get("stop_on", []))
    raised = [f for f in job.findings if f["phase"] == "training" and f["code"] in stop_on]
    return min(raised, key=lambda f: f.get("epoch") or 0)["code"] if raised else None


def state(job: Job, found: Best) -> TrialState:
    """The Optuna state of a finished trial job."""
    if job.stop_reason in PRUNED_STOPS:
        return TrialState.PRUNED
    if job.status is JobStatus.succeeded and found.value is not None:
        return TrialState.COMPLETE
    return TrialState.FAIL  # failed, cancelled, or no finite objective


def attributes(job: Job, found: Best) -> dict[str, Any]:
    """Kept on the Optuna trial (user attributes), so the study alone says what each trial was."""
    return {"job_id": job.id, "stop_reason": job.stop_reason.value if job.stop_reason else None,
            "stopped_by": stopped_by(job), "best_epoch": found.epoch}
