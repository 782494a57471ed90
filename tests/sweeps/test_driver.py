"""The sweep driver on a real Postgres and Optuna's real storage, without training: jobs are ended by hand
through the lifecycle, as a worker ends them."""


import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import select
from sqlalchemy.orm import Session

from keras_bridge.validate import check_spec
from models import lifecycle
from models.db import utcnow
from models.enums import JobStatus, StopReason, SweepStatus
from models.holder import this_process
from models.ids import new_id
from models.spec import JobSpec
from models.sweep_spec import SweepRequest
from models.tables import EpochMetric, Job, Sweep, SweepEvent
from sweeps import driver, space, study
from tests.specs import IRIS_MLP

RATES = [0.001, 0.01, 0.1]


def make_sweep(session: Session, optuna_storage, **extra) -> Sweep:
    request = SweepRequest.model_validate({
        "spec": IRIS_MLP, "space": {"compile.optimizer.learning_rate": {"choice": RATES}},
        "sampler": "grid", "parallelism": 2, **extra})
    sweep = Sweep(id=new_id("swp"), tenant="t", name="lr", request=request.model_dump(mode="json"),
                  trials_planned=space.planned_trials(request), summary=check_spec(request.spec))
    session.add(sweep)
    session.flush()
    study.create(optuna_storage, sweep.id, request)
    return sweep


def advance(session: Session, sweep: Sweep, optuna_storage, **kw) -> list[Job]:
    return driver.advance(session, sweep.id, storage=optuna_storage, max_queued=kw.pop("max_queued", 100), **kw)


def end(session: Session, job: Job, val_losses: list[float], *, reason=StopReason.completed) -> None:
    running = lifecycle.claim(session, job.id, holder=this_process(), stale_before=utcnow())
    assert running is not None
    for epoch, value in enumerate(val_losses, start=1):
        session.add(EpochMetric(job_id=job.id, epoch=epoch, metrics={"loss": value, "val_loss": value},
                                duration_s=0.5))
    lifecycle.finish(session, lifecycle.Claim.of(running), status=JobStatus.succeeded, stop_reason=reason)


def trials(sweep: Sweep, optuna_storage) -> list[optuna.trial.FrozenTrial]:
    return study.load(optuna_storage, sweep.id).get_trials()


def test_a_grid_runs_every_point_once_at_most_parallelism_at_a_time(db_session, optuna_storage):
    sweep = make_sweep(db_session, optuna_storage)
    first = advance(db_session, sweep, optuna_storage)
    assert [j.trial_number for j in first] == [0, 1]
    assert advance(db_session, sweep, optuna_storage) == []  # two are queued: nothing more starts
    end(db_session, first[0], [0.9, 0.5, 0.6])
    third = advance(db_session, sweep, optuna_storage)
    assert [j.trial_number for j in third] == [2]
    assert trials(sweep, optuna_storage)[0].state is TrialState.COMPLETE
    assert trials(sweep, optuna_storage)[0].value == 0.5  # the best epoch's val_loss
    end(db_session, first[1], [0.8, 0.7])
    end(db_session, third[0], [1.2])
    assert advance(db_session, sweep, optuna_storage) == []
    assert sweep.status is SweepStatus.succeeded
    jobs = db_session.scalars(select(Job).where(Job.sweep_id == sweep.id)).all()
    rates = sorted(JobSpec.model_validate(j.spec).compile.optimizer.args["learning_rate"] for j in jobs)
    assert rates == RATES  # every grid point, once
    assert all(JobSpec.model_validate(j.spec).diagnosis.stop_on == ["stuck_at_chance", "diverging",
                                                                    "saturated_outputs"] for j in jobs)
    assert [t.state for t in trials(sweep, optuna_storage)] == [TrialState.COMPLETE] * 3
    events = db_session.scalars(select(SweepEvent).where(SweepEvent.sweep_id == sweep.id).order_by(SweepEvent.id))
    assert [(e.type.value, e.data.get("number")) for e in events] == [
        ("trial.started", 0), ("trial.started", 1),
        ("trial.finished", 0), ("sweep.best", 0), ("trial.started", 2),
        ("trial.finished", 1), ("trial.finished", 2), ("sweep.succeeded", None)]  # 0.7 and 1.2: no new best


def test_a_trial_is_told_once_however_often_the_sweep_advances(db_session, optuna_storage):
    sweep = make_sweep(db_session, optuna_storage, parallelism=1)
    [job] = advance(db_session, sweep, optuna_storage)
    end(db_session, job, [0.4, 0.3], reason=StopReason.pruned)
    advance(db_session, sweep, optuna_storage)
    told = trials(sweep, optuna_storage)[0]
    assert told.state is TrialState.PRUNED and told.user_attrs["stop_reason"] == "pruned"
    for _ in range(3):  # an advance that finds it told leaves it as it is
        advance(db_session, sweep, optuna_storage)
    assert trials(sweep, optuna_storage)[0].datetime_complete == told.datetime_complete
    assert len(trials(sweep, optuna_storage)) == 2


def test_a_trial_asked_by_a_driver_that_died_before_its_commit_gets_its_job(db_session, optuna_storage):
    sweep = make_sweep(db_session, optuna_storage, parallelism=1, sampler="random",
                       space={"compile.optimizer.learning_rate": {"loguniform": [1e-4, 1e-1]}})
    request = SweepRequest.model_validate(sweep.request)
    asked = study.load(optuna_storage, sweep.id).ask()  # a driver asked, then died: no job row
    value = study.params_of(asked, request)["compile.optimizer.learning_rate"]
    [job] = advance(db_session, sweep, optuna_storage)
    assert job.trial_number == asked.number
    assert job.spec["compile"]["optimizer"]["learning_rate"] == value
    assert len(trials(sweep, optuna_storage)) == 1  # adopted, not asked again


def test_a_full_queue_leaves_the_trial_to_a_later_advance(db_session, optuna_storage):
    sweep = make_sweep(db_session, optuna_storage)
    with pytest.raises(lifecycle.QueueFull):
        advance(db_session, sweep, optuna_storage, max_queued=0, strict=True)
    assert advance(db_session, sweep, optuna_storage, max_queued=0) == []
    assert [j.trial_number for j in advance(db_session, sweep, optuna_storage)] == [0, 1]  # the asked ones
    assert len(trials(sweep, optuna_storage)) == 2


def test_cancel_cancels_the_queued_trials_and_starts_no_more(db_session, optuna_storage):
    sweep = make_sweep(db_session, optuna_storage)
    jobs = advance(db_session, sweep, optuna_storage)
    driver.cancel(db_session, sweep.id)
    assert {db_session.get(Job, j.id).status for j in jobs} == {JobStatus.cancelled}
    assert advance(db_session, sweep, optuna_storage) == []
    assert sweep.status is SweepStatus.cancelled
    assert {t.state for t in trials(sweep, optuna_storage)} == {TrialState.FAIL}  # told: cancelled


def test_every_ask_of_a_grid_sees_its_points_in_one_order(db_session, optuna_storage):
    # The grid sampler shuffles its points with its seed and gives trial n the n-th: a sampler made with
    # another seed for each ask would run some points twice and skip others.
    rates = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    sweep = make_sweep(db_session, optuna_storage, parallelism=1,
                       space={"compile.optimizer.learning_rate": {"choice": rates}})
    for _ in rates:
        [job] = advance(db_session, sweep, optuna_storage)
        end(db_session, job, [0.5])
    jobs = db_session.scalars(select(Job).where(Job.sweep_id == sweep.id)).all()
    assert sorted(JobSpec.model_validate(j.spec).compile.optimizer.args["learning_rate"] for j in jobs) == rates
    assert advance(db_session, sweep, optuna_storage) == [] and sweep.status is SweepStatus.succeeded
