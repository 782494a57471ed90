"""Cross-validation's rules over a run's folds: the fold rows of a run, the parent's status, the aggregate
metrics, the findings.

The rules are pure functions of the fold jobs as they are now, so reading them again (a re-run fold, a
worker killed and its fold trained again, two folds ending at once) never counts anything twice. Here
rather than in the API because the sweep driver (``sweeps/``, run by workers too) makes and reads runs.
"""

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.enums import JobStatus, StopReason
from models.ids import new_id
from models.tables import Job

# Parent status -> its stop_reason once finished.
STOP_REASONS = {JobStatus.succeeded: StopReason.completed, JobStatus.failed: StopReason.error,
                JobStatus.cancelled: StopReason.cancelled}
NOT_METRICS = frozenset({"epoch"})  # last_metrics also carries the epoch it is from


def fold_jobs(parent: Job) -> list[Job]:
    """The K fold jobs of a run whose ``parent`` row is built (not yet inserted): ordinary jobs with the
    parent's spec, tenant and preflight findings, each with its fold index."""
    assert parent.cv_folds is not None
    return [Job(id=new_id("job"), tenant=parent.tenant, name=parent.name, spec=parent.spec,
                dataset_ref=parent.dataset_ref, cv_parent_id=parent.id, fold=index, epochs=parent.epochs,
                findings=list(parent.findings), created_at=parent.created_at, enqueued_at=parent.enqueued_at)
            for index in range(parent.cv_folds)]


def folds_of(session: Session, parent: Job) -> list[Job]:
    """A run's fold jobs, by fold index (empty for a job that is not a CV parent)."""
    if parent.cv_folds is None:
        return []
    return list(session.scalars(select(Job).where(Job.cv_parent_id == parent.id).order_by(Job.fold)))


def cv_status(folds: Sequence[JobStatus]) -> JobStatus:
    """The parent's status: queued until a fold starts; running while any fold has not finished;
    once all have: failed if any failed, else cancelled if any was cancelled, else succeeded."""
    if folds and all(status.finished for status in folds):
        if JobStatus.failed in folds:
            return JobStatus.failed
        return JobStatus.cancelled if JobStatus.cancelled in folds else JobStatus.succeeded
    if any(status is not JobStatus.queued for status in folds):
        return JobStatus.running
    return JobStatus.queued


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def aggregate(per_fold: Sequence[Mapping[str, Any] | None]) -> dict[str, dict[str, float | int | None]]:
    """Per metric over the folds that reported it: ``{"mean", "std", "n"}``.

    ``std`` is the population standard deviation (``numpy.std``, what ``scores.std()`` gives a
    scikit-learn user after ``cross_val_score``). A fold whose value is null (NaN or inf: it
    diverged) makes that metric's mean and std null rather than silently dropping the fold.
    """
    names = sorted({name for metrics in per_fold if metrics for name in metrics if name not in NOT_METRICS})
    out: dict[str, dict[str, float | int | None]] = {}
    for name in names:
        values = [metrics.get(name) for metrics in per_fold if metrics and name in metrics]
        if all(_finite(v) for v in values):
            out[name] = {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "n": len(values)}
        else:
            out[name] = {"mean": None, "std": None, "n": len(values)}
    return out


def finding_key(finding: Mapping[str, Any]) -> tuple[str, str | None]:
    """Findings are "the same" across folds by code (and, for the verdict, by the verdict it gives)."""
    verdict = (finding.get("evidence") or {}).get("verdict") if finding["code"] == "verdict" else None
    return finding["code"], verdict


def split_findings(per_fold: Sequence[Sequence[Mapping[str, Any]]], folds: int
                   ) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(whole-run findings, per-fold findings): a finding raised in most folds (more than ``folds`` / 2)
    is reported once for the whole run, as its first fold raised it, with ``folds``: the folds it came
    from; the others stay with their fold."""
    seen: dict[tuple[str, str | None], list[int]] = {}
    for index, findings in enumerate(per_fold):
        for key in dict.fromkeys(finding_key(f) for f in findings):
            seen.setdefault(key, []).append(index)
    majority = {key for key, where in seen.items() if len(where) * 2 > folds}
    whole_run: list[dict[str, Any]] = []
    for index, findings in enumerate(per_fold):
        for finding in findings:
            key = finding_key(finding)
            if key in majority:
                majority.discard(key)
                whole_run.append({**finding, "folds": seen[key]})
    rest = [[dict(f) for f in findings if len(seen[finding_key(f)]) * 2 <= folds] for findings in per_fold]
    return whole_run, rest


class RunAggregate(NamedTuple):
    status: JobStatus  # the run's (its parent's)
    folds: int  # K
    finished: int  # folds that have ended, whatever their status
    metrics: dict[str, dict[str, float | int | None]]  # per metric of the folds' final epochs: mean, std, n
    test_metrics: dict[str, dict[str, float | int | None]] | None  # the same over their test metrics


def run_aggregate(parent: Job, folds: Sequence[Job]) -> RunAggregate:
    """A run's metrics as mean ± std over its folds: each fold's final epoch (its ``val_*`` metrics are
    its held-out part's, the cross-validation score), and its test metrics when there is a test part.
    Only succeeded folds count; ``n`` says how many folds each figure is over."""
    done = [fold for fold in folds if fold.status is JobStatus.succeeded]
    tests = [fold.test_metrics for fold in done if fold.test_metrics]
    return RunAggregate(status=parent.status, folds=parent.cv_folds or len(folds),
                        finished=sum(fold.status.finished for fold in folds),
                        metrics=aggregate([fold.last_metrics for fold in done]),
                        test_metrics=aggregate(tests) if tests else None)
