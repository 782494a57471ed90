"""The sweep request (POST /v1/sweeps body): a base job spec, a search space over its paths,
the sampler, the objective and the pruning. The contract between the API, which accepts it,
and the sweep driver (``sweeps/``), which turns it into trials, as ``JobSpec`` is for a job.

Each distribution is a one-key object, e.g. ``{"loguniform": [1e-4, 1e-1]}``: Optuna's
distributions (``sweeps/space.py`` maps them), named as Ray Tune and W&B sweeps name them.
"""

import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from models.spec import JobSpec, StrictModel, TrainingCode, WebhookSpec

Scalar = str | bool | int | float | None
# Dotted paths into the job spec: "compile.optimizer.learning_rate", "model.layers.1.units", "data.scale_x".
SpacePath = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$", max_length=200)]
# [low, high]
FloatBounds = Annotated[list[float], Field(min_length=2, max_length=2)]
IntBounds = Annotated[list[Annotated[int, Field(ge=-(2**31), le=2**31)]], Field(min_length=2, max_length=2)]
DEFAULT_STOP_ON: list[str] = ["stuck_at_chance", "diverging", "saturated_outputs"]


class Choice(StrictModel):
    """One of the listed values (Optuna's categorical distribution; the only kind a grid takes)."""

    choice: list[Scalar] = Field(min_length=1, max_length=100)

    def values(self) -> list[Any]:
        return list(self.choice)


class Uniform(StrictModel):
    """A float drawn uniformly from [low, high]."""

    uniform: FloatBounds

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        low, high = self.uniform
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"expected [low, high] with low < high. Received: uniform={self.uniform}")
        return self

    def values(self) -> list[Any]:
        return list(self.uniform)


class LogUniform(StrictModel):
    """A float drawn uniformly on a log scale from [low, high], 0 < low < high (learning rates)."""

    loguniform: FloatBounds

    @model_validator(mode="after")
    def _ordered(self) -> "LogUniform":
        low, high = self.loguniform
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
            raise ValueError(f"expected [low, high] with 0 < low < high. Received: loguniform={self.loguniform}")
        return self

    def values(self) -> list[Any]:
        return list(self.loguniform)


class IntRange(StrictModel):
    """An integer from [low, high] (both included), on a ``step`` grid or a log scale."""

    int: IntBounds
    step: Annotated[int, Field(ge=1)] = 1
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        low, high = self.int
        if low >= high:
            raise ValueError(f"expected [low, high] with low < high. Received: int={self.int}")
        if self.log and (low < 1 or self.step != 1):
            raise ValueError(f"a log scale needs low >= 1 and step 1. Received: int={self.int}, "
                             f"step={self.step}")
        return self

    def values(self) -> list[Any]:
        low, high = self.int
        return [low, low + (high - low) // self.step * self.step]  # the highest value on the step grid


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in ("choice", "uniform", "loguniform", "int") if key in value), None)
    return {Choice: "choice", Uniform: "uniform", LogUniform: "loguniform", IntRange: "int"}.get(type(value))


Distribution = Annotated[
    Annotated[Choice, Tag("choice")] | Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("loguniform")] | Annotated[IntRange, Tag("int")],
    Discriminator(_kind, custom_error_type="distribution", custom_error_message=(
        'expected one of {"choice": [...]}, {"uniform": [low, high]}, {"loguniform": [low, high]}, '
        '{"int": [low, high], "step": 1, "log": false}')),
]


class Objective(StrictModel):
    """What a trial is judged by: one of its epoch metrics, e.g. ``val_loss`` or ``val_accuracy``,
    at its best epoch."""

    metric: str = Field(default="val_loss", min_length=1, max_length=100)
    direction: Literal["minimize", "maximize"] = "minimize"


class Pruning(StrictModel):
    """How doomed trials stop early.

    ``pruner``: Optuna's pruner on the per-epoch objective (``median``: stop a trial whose best
    value so far is worse than the median of the earlier trials at the same epoch;
    ``successive_halving``: keep the top 1/4 at each rung). ``startup_trials``: trials that run
    to the end before the median pruner judges any; ``warmup_epochs``: epochs a trial always runs.
    ``stop_on``: training findings that stop a trial at once (its spec's ``diagnosis.stop_on``).
    """

    pruner: Literal["median", "successive_halving", "none"] = "median"
    startup_trials: int = Field(default=5, ge=0, le=1000)
    warmup_epochs: int = Field(default=1, ge=0, le=100_000)
    stop_on: list[TrainingCode] = Field(default_factory=lambda: list(DEFAULT_STOP_ON))


SweepWebhookEvent = Literal["trial.started", "trial.finished", "trial.pruned", "sweep.best", "sweep.succeeded",
                            "sweep.failed", "sweep.cancelled"]
DEFAULT_SWEEP_WEBHOOK_EVENTS: list[SweepWebhookEvent] = [
    "trial.finished", "trial.pruned", "sweep.best", "sweep.succeeded", "sweep.failed", "sweep.cancelled"]


class SweepWebhook(WebhookSpec):
    """Where to POST the sweep's own events (those of ``GET /v1/sweeps/{id}/events``), signed and retried
    exactly as a job's webhook is; each trial job's own events go to the base spec's ``webhook``."""

    events: list[SweepWebhookEvent] = Field(  # type: ignore[assignment]
        default_factory=lambda: list(DEFAULT_SWEEP_WEBHOOK_EVENTS), min_length=1)


class SweepRequest(StrictModel):
    spec: JobSpec
    space: dict[SpacePath, Distribution] = Field(min_length=1, max_length=20)
    sampler: Literal["grid", "random", "tpe"] = "tpe"
    max_trials: int = Field(default=20, ge=1, le=1000)
    parallelism: int = Field(default=2, ge=1, le=64)
    objective: Objective = Field(default_factory=Objective)
    pruning: Pruning = Field(default_factory=Pruning)
    name: str | None = Field(default=None, max_length=200)
    webhook: SweepWebhook | None = None
