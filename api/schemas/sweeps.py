"""The sweep schemas of the API, and the functions that build them from rows and the sweep's report."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.jobs import public_spec
from models.enums import JobStatus, StopReason, SweepStatus
from models.sweep_spec import Objective, Pruning
from models.tables import Sweep
from sweeps.report import SweepReport, TrialRow

SWEEP_EXAMPLE = {"requestBody": {"content": {"application/json": {"example": {
    "spec": {"dataset": "builtin:digits", "data": {"validation_split": 0.2, "scale_x": "rescale"},
             "model": {"input_shape": [64], "layers": [{"type": "Dense", "units": 32, "activation": "relu"},
                                                       {"type": "Dense", "units": 10, "activation": "softmax"}]},
             "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.001},
                         "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
             "fit": {"epochs": 10, "batch_size": 32}, "seed": 1},
    "space": {"compile.optimizer.learning_rate": {"loguniform": [1e-4, 1e-1]},
              "fit.batch_size": {"choice": [16, 32, 64]}, "model.layers.0.units": {"int": [16, 128], "step": 16}},
    "sampler": "tpe", "max_trials": 24, "parallelism": 2,
    "objective": {"metric": "val_loss", "direction": "minimize"},
    "pruning": {"pruner": "median", "stop_on": ["stuck_at_chance", "diverging"]},
}}}}}
SWEEP_RULES = """
`space` maps dotted paths of the job spec (`compile.optimizer.learning_rate`, `fit.batch_size`,
`model.layers.1.units`, `data.scale_x`) to a distribution: `{"choice": [...]}`, `{"uniform": [low, high]}`,
`{"loguniform": [low, high]}` or `{"int": [low, high], "step": 1, "log": false}`. Before the sweep is accepted,
every value of every choice and both ends of every range (and every point of a grid of up to 16) is checked
as POST /v1/jobs checks a spec; a value that makes an invalid spec is a 422 naming `space.<path>` and the value.
The `grid` sampler takes choices only. Each trial is an ordinary job (`sweep_id`, `trial_number`), queued
at most `parallelism` at a time; they count against the tenant's queued-job cap.
"""


class SweepTrialOut(BaseModel):
    number: int
    job_id: str | None
    params: dict[str, Any]
    status: JobStatus = Field(description="the trial job's status")
    state: str = Field(description="the Optuna trial's state: running, complete, pruned, fail")
    objective: float | None = Field(description=(
        "the best value of the objective's metric so far; a cross-validated trial (data.folds): the mean over "
        "its succeeded folds' final epochs"))
    best_epoch: int | None
    epochs_run: int
    epochs: int
    verdict: str | None
    stop_reason: StopReason | None
    stopped_by: str | None = Field(description="the finding that stopped it (stop_reason diagnosis)")
    saved_s: float = Field(description=(
        "training time its early stop saved: epochs not run × its mean epoch time after the first (which also "
        "traces the model)"))
    rank: int | None = Field(description="1 is the best of the complete trials")


class SweepOut(BaseModel):
    id: str
    name: str | None
    status: SweepStatus
    sampler: str
    objective: Objective
    pruning: Pruning
    space: dict[str, Any]
    max_trials: int
    trials_planned: int = Field(description="max_trials, or the grid's size when smaller")
    parallelism: int
    created_at: datetime
    finished_at: datetime | None
    spec: dict[str, Any] = Field(description="the base spec (its seed fixed; every trial uses it)")
    webhook: dict[str, Any] | None = Field(default=None, description=(
        "where the sweep's own events are POSTed (url, events; the secret is never shown)"))
    trials: list[SweepTrialOut] | None = Field(default=None, description="GET one sweep only")
    best: SweepTrialOut | None = None
    importances: dict[str, float] | None = Field(
        default=None, description="Optuna's fANOVA parameter importances, once two trials are complete")
    pruning_saved_s: dict[str, float] | None = Field(
        default=None, description="training time saved by stopping trials early: pruned, diagnosis, total")


def _trial(row: TrialRow) -> SweepTrialOut:
    return SweepTrialOut(**row.__dict__)


def sweep_out(sweep: Sweep) -> SweepOut:
    request = sweep.request
    return SweepOut(
        id=sweep.id, name=sweep.name, status=sweep.status, sampler=request["sampler"],
        objective=Objective.model_validate(request["objective"]), pruning=Pruning.model_validate(request["pruning"]),
        space=request["space"], max_trials=request["max_trials"], trials_planned=sweep.trials_planned,
        parallelism=request["parallelism"], created_at=sweep.created_at, finished_at=sweep.finished_at,
        spec=public_spec(request["spec"]), webhook=public_spec(request).get("webhook"))


def sweep_detail_out(sweep: Sweep, report: SweepReport) -> SweepOut:
    out = sweep_out(sweep)
    out.trials = [_trial(row) for row in report.trials]
    out.best = _trial(report.best) if report.best else None
    out.importances = report.importances
    out.pruning_saved_s = report.saved_s
    return out


