"""Sweeps whose base spec has ``data.folds``: each trial a cross-validation run. The driver on a real
Postgres and Optuna's real storage, without training: folds are ended by hand through the lifecycle, with
what a worker leaves on them (last epoch's metrics, findings)."""

from datetime import timedelta

import pytest
from optuna.trial import TrialState
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import lifecycle
from models.db import utcnow
from models.enums import JobStatus, StopReason, SweepStatus
from models.holder import this_process
from models.tables import Job, Sweep, SweepEvent
from sweeps import driver, report
from sweeps.pruning import TrialJudge, judge_for
from tests.specs import IRIS_MLP, spec
from tests.sweeps.test_driver import advance, make_sweep, trials

CV_IRIS = spec(IRIS_MLP, data={"folds": 2})
del CV_IRIS["data"]["validation_split"]


def cv_sweep(session: Session, optuna_storage, **extra) -> Sweep:
    return make_sweep(session, optuna_storage, spec=CV_IRIS, **extra)


def folds_of(session: Session, parent: Job) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.cv_parent_id == parent.id).order_by(Job.fold)))


def trial_job(session: Session, sweep: Sweep, number: int) -> Job:
    return session.scalars(select(Job).where(Job.sweep_id == sweep.id, Job.trial_number == number)).one()


def end_fold(session: Session, fold: Job, val_loss: float, *, reason=StopReason.completed,
             findings: list | None = None) -> None:
    held = lifecycle.claim(session, fold.id, holder=this_process(), stale_before=utcnow() - timedelta(hours=1))
    assert held is not None
    held.last_metrics = {"epoch": 3, "loss": val_loss, "val_loss": val_loss}
    held.findings = findings or []
    session.flush()
    assert lifecycle.finish(session, lifecycle.Claim.of(held), status=JobStatus.succeeded, stop_reason=reason)


def stuck(epoch: int = 2) -> dict:
    return {"code": "stuck_at_chance", "severity": "warning", "phase": "training", "epoch": epoch,
            "message": "stuck", "evidence": {}, "suggestions": []}


def test_each_trial_is_a_run_whose_folds_are_sent_and_whose_objective_is_their_mean(db_session, optuna_storage):
    sweep = cv_sweep(db_session, optuna_storage)
    sent = advance(db_session, sweep, optuna_storage)

    parents = [trial_job(db_session, sweep, n) for n in (0, 1)]
    assert all(p.cv_folds == 2 for p in parents)  # the trial's job is the run: it is never sent
    assert sorted((j.cv_parent_id, j.fold) for j in sent) == sorted((p.id, f) for p in parents for f in (0, 1))
    assert all(j.sweep_id is None and j.trial_number is None for j in sent)  # one job per trial: its parent
    folds = folds_of(db_session, parents[0])
    end_fold(db_session, folds[0], 0.4)
    assert advance(db_session, sweep, optuna_storage) == []  # its run is not over: nothing told, nothing new
    assert trials(sweep, optuna_storage)[0].state is TrialState.RUNNING
    end_fold(db_session, folds[1], 0.6)

    sent = advance(db_session, sweep, optuna_storage)

    told = trials(sweep, optuna_storage)[0]
    assert told.state is TrialState.COMPLETE and told.value == pytest.approx(0.5)  # the mean over the folds
    assert [j.fold for j in sent] == [0, 1] and {j.cv_parent_id for j in sent} == {
        trial_job(db_session, sweep, 2).id}  # the third trial's run takes the finished one's place
    row = report.report(db_session, optuna_storage, sweep, [trial_job(db_session, sweep, n) for n in (0, 1, 2)])
    assert (row.trials[0].objective, row.trials[0].epochs_run, row.trials[0].epochs) == (pytest.approx(0.5), 0, 6)


def test_a_fold_stopped_by_the_diagnosis_stops_its_whole_trial_and_the_sweep_says_why(db_session, optuna_storage):
    sweep = cv_sweep(db_session, optuna_storage, parallelism=1)
    advance(db_session, sweep, optuna_storage)
    parent = trial_job(db_session, sweep, 0)
    folds = folds_of(db_session, parent)
    end_fold(db_session, folds[1], 1.1, reason=StopReason.diagnosis, findings=[stuck()])

    advance(db_session, sweep, optuna_storage)

    assert db_session.get(Job, folds[0].id).status is JobStatus.cancelled  # queued: cancelled at once
    db_session.refresh(parent)
    assert parent.status is JobStatus.cancelled  # the run follows its folds
    told = trials(sweep, optuna_storage)[0]
    assert told.state is TrialState.PRUNED and told.value is None
    assert (told.user_attrs["stop_reason"], told.user_attrs["stopped_by"], told.user_attrs["stopped_in_fold"]) == (
        "diagnosis", "stuck_at_chance", 1)
    pruned = db_session.scalars(select(SweepEvent).where(SweepEvent.sweep_id == sweep.id,
                                                         SweepEvent.type == "trial.pruned")).one()
    assert (pruned.data["number"], pruned.data["stopped_by"]) == (0, "stuck_at_chance")
    [row, _] = report.report(db_session, optuna_storage, sweep,
                             [trial_job(db_session, sweep, n) for n in (0, 1)]).trials
    assert (row.state, row.stop_reason, row.stopped_by) == ("pruned", StopReason.diagnosis, "stuck_at_chance")
    assert trial_job(db_session, sweep, 1).status is JobStatus.queued  # the next trial took its place


def test_a_running_fold_of_a_doomed_trial_is_flagged_and_the_trial_is_told_once_it_ends(db_session, optuna_storage):
    sweep = cv_sweep(db_session, optuna_storage, parallelism=1)
    advance(db_session, sweep, optuna_storage)
    parent = trial_job(db_session, sweep, 0)
    first, second = folds_of(db_session, parent)
    assert lifecycle.claim(db_session, first.id, holder=this_process(), stale_before=utcnow()) is not None
    end_fold(db_session, second, 0.7, reason=StopReason.pruned)

    for _ in range(2):  # however often it advances, the run is cancelled once and not told while a fold runs
        assert advance(db_session, sweep, optuna_storage) == []
    db_session.refresh(first)
    assert first.status is JobStatus.running and first.cancel_requested  # its worker stops it within an epoch
    assert trials(sweep, optuna_storage)[0].state is TrialState.RUNNING

    claim = lifecycle.Claim.of(first)
    assert lifecycle.finish(db_session, claim, status=JobStatus.cancelled, stop_reason=StopReason.cancelled)
    advance(db_session, sweep, optuna_storage)
    told = trials(sweep, optuna_storage)[0]
    assert told.state is TrialState.PRUNED and told.user_attrs["stop_reason"] == "pruned"


def test_cancelling_the_sweep_cancels_the_folds_of_its_trials(db_session, optuna_storage):
    sweep = cv_sweep(db_session, optuna_storage)
    sent = advance(db_session, sweep, optuna_storage)
    driver.cancel(db_session, sweep.id)
    assert {db_session.get(Job, j.id).status for j in sent} == {JobStatus.cancelled}
    advance(db_session, sweep, optuna_storage)
    assert sweep.status is SweepStatus.cancelled
    assert {t.state for t in trials(sweep, optuna_storage)} == {TrialState.FAIL}


def test_fold_0_reports_to_the_pruner_for_its_trial_and_the_other_folds_do_not(db_session, optuna_storage):
    sweep = cv_sweep(db_session, optuna_storage)
    advance(db_session, sweep, optuna_storage)
    first, second = folds_of(db_session, trial_job(db_session, sweep, 0))
    judge = judge_for(db_session, optuna_storage, first)
    assert isinstance(judge, TrialJudge) and judge.trial.number == 0
    assert judge_for(db_session, optuna_storage, second) is None
    judge(1, {"val_loss": 0.8})
    assert trials(sweep, optuna_storage)[0].intermediate_values == {0: 0.8}
