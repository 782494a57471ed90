"""The cross-validation parts of a job's detail (``data.folds``): its folds and the run's aggregate."""

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import Metrics
from models.cv import RunAggregate, split_findings
from models.enums import JobStatus, StopReason
from models.findings import Finding
from models.tables import Job


class MetricStat(BaseModel):
    mean: float | None = Field(description="null when a fold's value was not finite (it diverged)")
    std: float | None = Field(description="population standard deviation over the folds (numpy.std)")
    n: int = Field(description="how many folds it is over")


class HeldOut(BaseModel):
    index: int
    folds: int
    stratified: bool = Field(description="folds keep the class proportions (a classifier's class labels)")
    held_out_sha256: str = Field(description="a fingerprint of the held-out sample indices: folds differ")
    samples: int | None
    label_counts: dict[str, int] | None


class FoldOut(BaseModel):
    fold: int
    job_id: str
    status: JobStatus
    stop_reason: StopReason | None
    metrics: Metrics | None = Field(description="the fold's final epoch (val_* are its held-out part's)")
    test_metrics: Metrics | None
    held_out: HeldOut | None = Field(description="the part this fold validated on, once its worker split the data")


class RunFinding(Finding):
    folds: list[int] = Field(description="the folds that raised it (more than half of them)")


class FoldFindings(BaseModel):
    fold: int
    job_id: str
    findings: list[Finding]


class CvFindings(BaseModel):
    whole_run: list[RunFinding] = Field(description="findings raised in most folds (> K/2), reported once")
    per_fold: list[FoldFindings] = Field(description="each fold's other findings")


class CvOut(BaseModel):
    folds: int = Field(description="K")
    finished: int = Field(description="folds that have ended")
    metrics: dict[str, MetricStat] = Field(description="per metric of the succeeded folds' final epochs")
    test_metrics: dict[str, MetricStat] | None = Field(description="the same over their test metrics "
                                                                   "(data.test_split)")
    findings: CvFindings


def _held_out(fold: Job) -> HeldOut | None:
    """What the worker recorded about the part a fold held out (``worker.data.prepare``)."""
    summary: dict[str, Any] = fold.data_summary or {}
    if "fold" not in summary:
        return None
    part = (summary.get("splits") or {}).get("validation") or {}
    return HeldOut(**summary["fold"], samples=part.get("samples"), label_counts=part.get("label_counts"))


def cv_out(folds: list[Job], run: RunAggregate) -> tuple[list[FoldOut], CvOut]:
    """A run's ``folds`` and ``cv``: its fold jobs and their aggregate (``models.cv.run_aggregate``)."""
    whole_run, rest = split_findings([fold.findings for fold in folds], run.folds)
    return (
        [FoldOut(fold=f.fold or 0, job_id=f.id, status=f.status, stop_reason=f.stop_reason, metrics=f.last_metrics,
                 test_metrics=f.test_metrics, held_out=_held_out(f)) for f in folds],
        CvOut(folds=run.folds, finished=run.finished, metrics=run.metrics, test_metrics=run.test_metrics,
              findings=CvFindings(whole_run=whole_run, per_fold=[
                  FoldFindings(fold=f.fold or 0, job_id=f.id, findings=found)
                  for f, found in zip(folds, rest, strict=True)])),
    )
