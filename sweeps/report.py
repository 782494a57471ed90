"""A sweep as it stands, for reading: each trial's row (its job and its Optuna trial), the best one,
the parameter importances, and the training time that stopping doomed trials saved."""

import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.cv import folds_of, split_findings
from models.enums import JobStatus, StopReason
from models.findings import verdict_of
from models.sweep_spec import SweepRequest
from models.tables import EpochMetric, Job, Sweep
from sweeps import outcome, study

log = logging.getLogger(__name__)


@dataclass
class TrialRow:
    number: int
    job_id: str | None  # None: a trial that never got a job (its values made no valid spec)
    params: dict[str, Any]
    status: str  # the job's status; "failed" for a trial without a job
    state: str  # Optuna's: running, complete, pruned, fail
    objective: float | None  # the best value of the objective's metric so far
    best_epoch: int | None
    epochs_run: int
    epochs: int
    verdict: str | None
    stop_reason: StopReason | None
    stopped_by: str | None  # the finding that stopped it (stop_reason "diagnosis")
    saved_s: float  # epochs it did not run × its steady epoch time (stopped by pruning or the diagnosis)
    rank: int | None = None  # 1 = best, among the complete trials


@dataclass
class SweepReport:
    trials: list[TrialRow]
    best: TrialRow | None
    importances: dict[str, float] | None
    saved_s: dict[str, float]  # {"pruned": s, "diagnosis": s, "total": s}


def _curves(session: Session, jobs: list[Job]) -> dict[str, list[EpochMetric]]:
    rows: dict[str, list[EpochMetric]] = defaultdict(list)
    if jobs:
        for row in session.scalars(select(EpochMetric).where(EpochMetric.job_id.in_([j.id for j in jobs]))
                                   .order_by(EpochMetric.epoch)):
            rows[row.job_id].append(row)
    return rows


def _steady_epoch_s(curve: list[EpochMetric]) -> float:
    """The mean time of an epoch after the first (which also traces the model, often several times a steady
    epoch's time): what an epoch that was not run would have taken. The first alone when it is all there is
    (an overestimate, then)."""
    steady = [row.duration_s for row in curve if row.epoch > 1] or [row.duration_s for row in curve]
    return statistics.fmean(steady)


def _row(trial: FrozenTrial, job: Job | None, folds: list[Job], curves: dict[str, list[EpochMetric]],
         request: SweepRequest) -> TrialRow:
    """One trial's row. A cross-validation trial's epochs are its folds' together, its objective their mean
    (``outcome.cv_best``), its verdict the one most folds gave, its stop the fold's that stopped it."""
    if job is None:
        return TrialRow(number=trial.number, job_id=None, params=dict(trial.params), status=JobStatus.failed.value,
                        state=trial.state.name.lower(), objective=None, best_epoch=None, epochs_run=0, epochs=0,
                        verdict=None, stop_reason=None, stopped_by=None, saved_s=0.0)
    if folds:
        found = outcome.cv_best(job, folds, request.objective)
        curve = [row for fold in folds for row in curves.get(fold.id, [])]
        epochs = job.epochs * len(folds)
        verdict = verdict_of(split_findings([fold.findings for fold in folds], len(folds))[0])
    else:
        curve = curves.get(job.id, [])
        found = outcome.best(curve, request.objective)
        epochs = job.epochs
        verdict = verdict_of(job.findings)
    stop = outcome.speaker(job, folds)
    saved = 0.0
    if outcome.doomed(stop) and curve:
        saved = max(0, epochs - len(curve)) * _steady_epoch_s(curve)
    return TrialRow(
        number=trial.number, job_id=job.id, params=dict(trial.params), status=job.status.value,
        state=trial.state.name.lower(), objective=found.value, best_epoch=found.epoch, epochs_run=len(curve),
        epochs=epochs, verdict=(verdict or {}).get("evidence", {}).get("verdict"), stop_reason=stop.stop_reason,
        stopped_by=outcome.stopped_by(stop), saved_s=round(saved, 3))


def importances(sweep_study: optuna.Study) -> dict[str, float] | None:
    """Optuna's fANOVA importances, once two trials are complete; None before (or when they cannot be told)."""
    complete = sweep_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None
    try:
        return {k: round(v, 4) for k, v in
                get_param_importances(sweep_study, evaluator=FanovaImportanceEvaluator(seed=0)).items()}
    except (ValueError, RuntimeError) as exc:  # e.g. every complete trial had the same values
        log.info("no importances for sweep %s: %s", sweep_study.study_name, exc)
        return None


def report(session: Session, storage: RDBStorage, sweep: Sweep, jobs: list[Job]) -> SweepReport:
    request = SweepRequest.model_validate(sweep.request)
    sweep_study = study.load(storage, sweep.id)
    by_number = {job.trial_number: job for job in jobs}
    folds = {job.id: folds_of(session, job) for job in jobs if job.cv_folds is not None}
    curves = _curves(session, [*jobs, *(fold for run in folds.values() for fold in run)])
    rows = []
    for trial in sweep_study.get_trials(deepcopy=False):
        job = by_number.get(trial.number)
        rows.append(_row(trial, job, folds.get(job.id, []) if job else [], curves, request))
    sign = 1 if request.objective.direction == "minimize" else -1
    ranked = sorted((r for r in rows if r.state == "complete" and r.objective is not None),
                    key=lambda r: sign * r.objective)  # type: ignore[operator]
    for rank, row in enumerate(ranked, start=1):
        row.rank = rank
    saved = {kind: round(sum(r.saved_s for r in rows if r.stop_reason is reason), 3)
             for kind, reason in (("pruned", StopReason.pruned), ("diagnosis", StopReason.diagnosis))}
    saved["total"] = round(saved["pruned"] + saved["diagnosis"], 3)
    return SweepReport(rows, ranked[0] if ranked else None, importances(sweep_study), saved)
