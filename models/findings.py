"""A finding: what the diagnosis says is wrong, with its evidence and fixes.

Stored as JSON on the job (``jobs.findings``) and carried by ``job.finding``
events; ``suggestions[].patch`` is a JSON merge patch (RFC 7386) of the spec,
which POST /v1/jobs/{id}/retry applies in one call.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning", "info"]
Phase = Literal["preflight", "training", "final"]


@dataclass(frozen=True)
class CodeInfo:
    """One finding code: everything about it that is data. Its rule, resolver and fixes are bound to
    it in ``diagnosis/registry.py`` (this package imports no other)."""

    name: str
    phase: Phase
    severity: Severity  # the usual one; a rule may lower it (info when a callback already handles it)
    verdict: str | None  # the verdict a warning of this code leads to (VERDICTS); None: the curves decide
    doc: str  # what it means, the symptom users report


@dataclass(frozen=True)
class VerdictInfo:
    name: str
    learned: bool  # the job learnt something (auto-retry leaves it alone)
    doc: str


# The finding codes, in the order the monitor tries the training rules. The enum ``Code``, the values
# ``diagnosis.stop_on`` accepts and the verdict groups are derived from this table: a new code is one row
# here, its rule (and resolver, fixes) in diagnosis/registry.py, and its test.
CODES: tuple[CodeInfo, ...] = (
    CodeInfo("output_shape_mismatch", "preflight", "error", None,
             "The model's output shape cannot match the targets (Dense(1) for 3-D targets; a sequence output "
             "against one target per sample, which Keras 3 silently broadcasts)."),
    CodeInfo("loss_target_mismatch", "preflight", "error", None,
             "The loss does not fit the labels or the output (categorical cross-entropy on integer labels, sparse "
             "cross-entropy on one-hot labels, softmax on one unit, which Keras 3 trains with only a warning)."),
    CodeInfo("metric_not_meaningful", "preflight", "warning", None,
             "A metric that means nothing for this task, such as accuracy on a regression loss."),
    CodeInfo("output_activation_range", "preflight", "warning", None,
             "The output activation cannot reach the targets (sigmoid for targets outside [0, 1])."),
    CodeInfo("unscaled_inputs", "preflight", "warning", None,
             "Inputs far from unit scale (raw pixels 0-255, features of very different scales)."),
    CodeInfo("saturating_activation", "preflight", "warning", None,
             "Sigmoid or tanh in the hidden layers of a deep stack: their gradients shrink layer by layer."),
    CodeInfo("oversized_window", "preflight", "warning", None,
             "A kernel or pool size that is large against the input length."),
    CodeInfo("tiny_batch", "preflight", "warning", None,
             "A batch size of 1-4: noisy gradients and erratic curves."),
    CodeInfo("learning_rate_extreme", "preflight", "warning", None,
             "A learning rate far outside the usual range of its optimizer."),
    CodeInfo("masking_misplaced", "preflight", "warning", None,
             "Masking after layers that change the time axis, so it masks nothing real."),
    CodeInfo("validation_split_skew", "preflight", "warning", "data_problem",
             "The validation part has a very different target distribution from the training part (Keras's "
             "validation_split takes the last fraction of the data unshuffled: sorted data gives one class)."),
    CodeInfo("class_imbalance", "preflight", "warning", None,
             "One class dominates, so accuracy will mislead (info when no accuracy metric is used)."),
    CodeInfo("diverging", "training", "error", "diverged",
             "The loss became NaN or inf, exploded far above the reference level, or the training loss climbed "
             "for 3 epochs beyond its noise to 1.5 times its lowest; it stops the job by default."),
    CodeInfo("saturated_outputs", "training", "warning", "not_learning",
             "Most predicted probabilities are pinned at 0 or 1 while the loss sits far above the label entropy "
             "(Keras 3 computes cross-entropy from logits, so such a loss can reach the thousands)."),
    CodeInfo("stuck_at_chance", "training", "warning", "not_learning",
             "The loss sits at the loss of the best constant prediction (the label entropy, ln K when balanced; "
             "the target variance for MSE) and accuracy at the majority rate: the model ignores its input."),
    CodeInfo("vanishing_gradients", "training", "warning", "not_learning",
             "The gradient norms reaching the early layers are near zero against the last layer's."),
    CodeInfo("overfitting", "training", "warning", "overfitting",
             "The training loss falls while the validation loss rises, or the model memorises: training fitted "
             "far beyond validation, which has not improved by 3 % for 4 epochs; names the best epoch (info when "
             "EarlyStopping with restore_best_weights already handles it)."),
    CodeInfo("plateau", "training", "warning", "plateau",
             "Train and validation loss are flat well above what the data allows."),
    CodeInfo("unstable", "training", "warning", None,
             "The loss jumps up and down from epoch to epoch; the verdict keeps the curves' reading and says so."),
    CodeInfo("verdict", "final", "info", None,
             "One line on how the run went (VERDICTS), with the best epoch and the reference levels; a warning "
             "when the job did not learn."),
)
# The verdicts, the first that a finding leads to wins (a diverged run is not also "overfitting").
VERDICTS: tuple[VerdictInfo, ...] = (
    VerdictInfo("diverged", False, "the loss blew up"),
    VerdictInfo("not_learning", False, "the model never got past what ignoring the input gives"),
    VerdictInfo("data_problem", False, "the validation data does not look like the training data"),
    VerdictInfo("overfitting", True, "the training loss fell while the validation loss rose"),
    VerdictInfo("plateau", False, "stuck on a plateau well above what the data allows"),
    VerdictInfo("learning", True, "both losses were still falling at the end: more epochs would help"),
    VerdictInfo("converged", True, "the losses have levelled off"),
)

Code = StrEnum("Code", [(info.name, info.name) for info in CODES], module=__name__, qualname="Code")
Code.__doc__ = "A finding's code (the rows of ``CODES``)."
INFO: dict[str, CodeInfo] = {info.name: info for info in CODES}
TRAINING_CODES: tuple[str, ...] = tuple(info.name for info in CODES if info.phase == "training")
VERDICT_NAMES: tuple[str, ...] = tuple(v.name for v in VERDICTS)
LEARNED: frozenset[str] = frozenset(v.name for v in VERDICTS if v.learned)
# (code, verdict) for the codes that decide a verdict, most decisive first: diagnosis/verdict.py reads it.
VERDICT_BY_CODE: tuple[tuple[Code, str], ...] = tuple(sorted(
    ((Code(info.name), info.verdict) for info in CODES if info.verdict is not None),
    key=lambda pair: VERDICT_NAMES.index(pair[1])))


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
