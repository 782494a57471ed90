"""A finding: what the diagnosis says is wrong, with its evidence and fixes.

Stored as JSON on the job (``jobs.findings``) and carried by ``job.finding``
events; ``suggestions[].patch`` is a JSON merge patch (RFC 7386) of the spec,
which POST /v1/jobs/{id}/retry applies in one call.
"""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class Code(StrEnum):
    # preflight
    output_shape_mismatch = "output_shape_mismatch"
    loss_target_mismatch = "loss_target_mismatch"
    metric_not_meaningful = "metric_not_meaningful"
    output_activation_range = "output_activation_range"
    unscaled_inputs = "unscaled_inputs"
    saturating_activation = "saturating_activation"
    oversized_window = "oversized_window"
    tiny_batch = "tiny_batch"
    learning_rate_extreme = "learning_rate_extreme"
    masking_misplaced = "masking_misplaced"
    validation_split_skew = "validation_split_skew"
    class_imbalance = "class_imbalance"
    # training
    stuck_at_chance = "stuck_at_chance"
    saturated_outputs = "saturated_outputs"
    diverging = "diverging"
    overfitting = "overfitting"
    plateau = "plateau"
    unstable = "unstable"
    vanishing_gradients = "vanishing_gradients"
    # final
    verdict = "verdict"


Severity = Literal["error", "warning", "info"]
Phase = Literal["preflight", "training", "final"]


class Suggestion(BaseModel):
    summary: str
    patch: dict[str, Any]


class Finding(BaseModel):
    code: Code
    severity: Severity
    phase: Phase
    epoch: int | None = None
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    suggestions: list[Suggestion] = Field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def verdict_of(findings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The final verdict among a job's stored findings; None until the job has ended."""
    return next((f for f in findings if f["code"] == Code.verdict.value), None)
