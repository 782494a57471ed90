"""A sweep's trial in the worker: each epoch reported to its Optuna trial, the median pruner stopping a
trial that is worse than an earlier one at the same epoch (stop_reason "pruned", Optuna's PRUNED), and the
reconciler's pass over running sweeps."""

import optuna
from optuna.trial import TrialState

from models.enums import JobStatus, StopReason
from models.tables import Job
from sweeps import driver, study
from sweeps.storage import storage
from tests.specs import IRIS_MLP, spec
from tests.sweeps.test_driver import end, make_sweep
from worker import sweep_hook
from worker.training import run_training


def test_the_median_pruner_stops_a_trial_worse_than_the_earlier_one(session_factory, db_session, settings):
    optuna_storage = storage(settings.database_dsn)
    base = spec(IRIS_MLP, compile={"optimizer": {"type": "Adam", "learning_rate": 0.01}}, fit={"epochs": 6})
    sweep = make_sweep(db_session, optuna_storage, spec=base, parallelism=1, space={
        "compile.optimizer.learning_rate": {"choice": [0.01, 0.0001]}},
        pruning={"pruner": "median", "startup_trials": 1, "warmup_epochs": 1})
    [first] = driver.advance(db_session, sweep.id, storage=optuna_storage, max_queued=100)
    # The first trial ran with a validation loss that nothing reaches at epoch 2.
    reported = optuna.Trial(study.load(optuna_storage, sweep.id),
                            optuna_storage.get_trial_id_from_study_id_trial_number(
                                optuna_storage.get_study_id_from_name(sweep.id), first.trial_number))
    for step in range(6):
        reported.report(1e-6, step)
    end(db_session, first, [1e-6] * 6)
    [second] = driver.advance(db_session, sweep.id, storage=optuna_storage, max_queued=100)
    db_session.commit()

    run_training(session_factory, second.id, settings=settings)

    job = db_session.get(Job, second.id, populate_existing=True)
    assert (job.status, job.stop_reason) == (JobStatus.succeeded, StopReason.pruned)
    assert job.epoch == 2  # epoch 1 is the warm-up; judged worse at epoch 2, stopped there
    driver.advance(db_session, sweep.id, storage=optuna_storage, max_queued=100)
    trial = study.load(optuna_storage, sweep.id).trials[second.trial_number]
    assert trial.state is TrialState.PRUNED and sorted(trial.intermediate_values) == [0, 1]
    assert trial.user_attrs["stop_reason"] == "pruned"


def test_the_reconcilers_pass_tells_a_trial_whose_worker_died_before_advancing(session_factory, db_session, settings):
    # The trial job ended, but its worker died before its own advance: the reconciler's pass over the running
    # sweeps tells it and starts the next trial, once however often it passes.
    optuna_storage = storage(settings.database_dsn)
    sweep = make_sweep(db_session, optuna_storage, parallelism=1)
    [first] = driver.advance(db_session, sweep.id, storage=optuna_storage, max_queued=100)
    end(db_session, first, [0.4])
    db_session.commit()
    sent: list[str] = []

    for _ in range(2):
        sweep_hook.advance_running(session_factory, settings=settings, send=lambda job_id, _: sent.append(job_id))

    assert study.load(optuna_storage, sweep.id).trials[0].state is TrialState.COMPLETE
    assert len(sent) == 1 and db_session.get(Job, sent[0]).trial_number == 1


def test_fold_0_of_a_cross_validated_trial_is_pruned_and_its_whole_trial_stops(session_factory, db_session, settings):
    optuna_storage = storage(settings.database_dsn)
    base = spec(IRIS_MLP, compile={"optimizer": {"type": "Adam", "learning_rate": 0.0001}}, fit={"epochs": 6},
                data={"folds": 2})
    del base["data"]["validation_split"]
    sweep = make_sweep(db_session, optuna_storage, spec=base, parallelism=1, space={
        "compile.optimizer.learning_rate": {"choice": [0.0001, 0.0002]}},  # 2 planned: the earlier one, this one
        pruning={"pruner": "median", "startup_trials": 0, "warmup_epochs": 1})
    study_id = optuna_storage.get_study_id_from_name(sweep.id)
    # An earlier trial (told by hand) reached a validation loss that nothing reaches at epoch 2.
    earlier = optuna_storage.create_new_trial(study_id)
    for step in range(6):
        optuna_storage.set_trial_intermediate_value(earlier, step, 1e-6)
    optuna_storage.set_trial_state_values(earlier, TrialState.COMPLETE, [1e-6])
    [fold_0, fold_1] = driver.advance(db_session, sweep.id, storage=optuna_storage, max_queued=100)
    db_session.commit()

    run_training(session_factory, fold_0.id, settings=settings)
    sweep_hook.advance_running(session_factory, settings=settings, send=lambda *a: None)

    assert db_session.get(Job, fold_0.id, populate_existing=True).stop_reason is StopReason.pruned
    assert db_session.get(Job, fold_1.id, populate_existing=True).status is JobStatus.cancelled  # never trained
    trial = study.load(optuna_storage, sweep.id).trials[1]
    assert trial.state is TrialState.PRUNED and trial.user_attrs["stopped_in_fold"] == 0
    assert sorted(trial.intermediate_values) == [0, 1]  # fold 0's epochs, judged worse at epoch 2
