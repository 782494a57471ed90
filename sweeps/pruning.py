"""A trial job's side of the sweep, during its training: each epoch's objective reported to its Optuna
trial, and the pruner's answer (Optuna's ``trial.report`` / ``trial.should_prune``).

A cross-validation trial (``data.folds``) reports fold 0's curve only. Every trial of a sweep has the
same seed, so its fold 0 validates on the same samples: the median pruner compares like with like, and
fold 0 is the first queued, so it reports earliest. (A mean over the folds that have reached an epoch
would depend on which folds happened to run first, and Optuna keeps the first report of a step, so it
could not be revised as later folds arrive.) When fold 0 is pruned the driver cancels the other folds.
"""

import logging
import math
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from sqlalchemy.orm import Session

from models.sweep_spec import SweepRequest
from models.tables import Job, Sweep
from sweeps import study

log = logging.getLogger(__name__)


class TrialJudge:
    """Called after each recorded epoch; True when the pruner says this trial should stop.

    A resumed run reports an epoch again: Optuna keeps the first report of a step. Once the trial
    was told (its job cancelled meanwhile), reports change nothing and nothing is pruned.
    """

    def __init__(self, storage: RDBStorage, sweep: Sweep, number: int) -> None:
        request = SweepRequest.model_validate(sweep.request)
        self.metric = request.objective.metric
        sweep_study = study.load(storage, sweep.id, pruner=study.pruner(request.pruning))
        study_id = storage.get_study_id_from_name(sweep.id)
        self.trial = optuna.Trial(sweep_study, storage.get_trial_id_from_study_id_trial_number(study_id, number))

    def __call__(self, epoch: int, logs: dict[str, Any]) -> bool:
        value = logs.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return False  # a NaN is the diagnosis's to judge (diverging)
        try:
            self.trial.report(float(value), epoch - 1)  # Optuna's steps start at 0 (its warm-up counts so)
            return self.trial.should_prune()
        except UpdateFinishedTrialError:
            return False


def judge_for(session: Session, storage: RDBStorage, job: Job) -> TrialJudge | None:
    """The judge of a sweep's trial job, or of fold 0 of a cross-validation trial; None for any other job,
    or a sweep that prunes nothing."""
    trial_job = job
    if job.cv_parent_id is not None:
        if job.fold != 0:
            return None
        trial_job = session.get_one(Job, job.cv_parent_id)
    if trial_job.sweep_id is None or trial_job.trial_number is None:
        return None
    sweep = session.get_one(Sweep, trial_job.sweep_id)
    if sweep.request["pruning"]["pruner"] == "none":
        return None
    return TrialJudge(storage, sweep, trial_job.trial_number)
