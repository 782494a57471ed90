"""What a finished trial job tells its Optuna trial: the objective, its best epoch, the state, and why
it stopped. Read from the job's row and its curve, so the driver (which tells) and the API (which
shows the trials) agree.

A trial whose spec has ``data.folds`` is a cross-validation run (its job is the run's parent, which no
worker trains): its objective is the run's mean of the metric over its succeeded folds' final epochs
(``models.cv.run_aggregate``, what ``GET /v1/jobs/{id}`` shows as ``cv``), and a fold stopped as doomed
(pruned, or by the diagnosis) speaks for the whole trial (``speaker``): the driver cancels the other folds.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState

from models.cv import run_aggregate
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


def cv_best(parent: Job, folds: Sequence[Job], objective: Objective) -> Best:
    """A cross-validation trial's objective: the mean of the metric over its succeeded folds' final epochs
    (None while none has succeeded, or when one diverged). A mean over folds has no best epoch."""
    stat = run_aggregate(parent, folds).metrics.get(objective.metric)
    mean = stat["mean"] if stat else None
    return Best(float(mean) if mean is not None else None, None)


def doomed(job: Job) -> bool:
    """Stopped early because it would not learn: by the pruner or the diagnosis."""
    return job.stop_reason in PRUNED_STOPS


def speaker(job: Job, folds: Sequence[Job]) -> Job:
    """The job whose stop speaks for the trial: a cross-validation trial's first fold stopped as doomed
    (its stop reason and finding are the trial's), else the trial job itself."""
    stopped = [fold for fold in folds if doomed(fold)]
    return min(stopped, key=lambda fold: (fold.finished_at is None, fold.finished_at, fold.fold)) if stopped else job


def stopped_by(job: Job) -> str | None:
    """The finding that stopped a trial stopped by the diagnosis (the first raised of its stop_on codes)."""
    if job.stop_reason is not StopReason.diagnosis:
        return None
    stop_on = set(job.spec.get("diagnosis", {}).get("stop_on", []))
    raised = [f for f in job.findings if f["phase"] == "training" and f["code"] in stop_on]
    return min(raised, key=lambda f: f.get("epoch") or 0)["code"] if raised else None


def state(job: Job, found: Best, stop: Job | None = None) -> TrialState:
    """The Optuna state of a finished trial job; ``stop``: the job that speaks for it (``speaker``)."""
    if doomed(stop or job):
        return TrialState.PRUNED
    if job.status is JobStatus.succeeded and found.value is not None:
        return TrialState.COMPLETE
    return TrialState.FAIL  # failed, cancelled, or no finite objective


def attributes(job: Job, found: Best, stop: Job | None = None) -> dict[str, Any]:
    """Kept on the Optuna trial (user attributes), so the study alone says what each trial was; a
    cross-validation trial's stop is its ``stop`` fold's (``speaker``), with that fold's index."""
    stop = stop or job
    extra = {"stopped_in_fold": stop.fold} if stop is not job else {}
    return {"job_id": job.id, "stop_reason": stop.stop_reason.value if stop.stop_reason else None,
            "stopped_by": stopped_by(stop), "best_epoch": found.epoch, **extra}
