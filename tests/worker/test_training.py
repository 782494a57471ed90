"""run_training on real Keras, against the test's Postgres transaction."""

import keras
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.enums import JobStatus, StopReason
from models.tables import EpochMetric, Job
from tests.specs import DIGITS_CNN, IRIS_MLP, spec
from worker import job_store
from worker.training import run_training


def curve(session: Session, job_id: str) -> list[EpochMetric]:
    return list(session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.epoch)))


def test_training_records_every_epoch_test_metrics_and_a_loadable_model(
    make_job, session_factory, db_session, settings
):
    job_id = make_job(spec(DIGITS_CNN, fit={"epochs": 4}))

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.succeeded and job.stop_reason is StopReason.completed, job.error
    rows = curve(db_session, job_id)
    assert [r.epoch for r in rows] == [1, 2, 3, 4]
    assert rows[-1].metrics["loss"] < rows[0].metrics["loss"]
    assert set(rows[0].metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert job.epoch == 4 and job.last_metrics["epoch"] == 4
    assert job.best_metrics["val_loss"] == min(r.metrics["val_loss"] for r in rows)
    assert set(job.test_metrics) == {"loss", "accuracy"}
    assert job.data_summary["splits"]["test"]["samples"] == 180
    model = keras.saving.load_model(settings.artifacts / job.model_path, safe_mode=True)
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape == (2, 10)


def test_same_seed_gives_the_same_curve(make_job, session_factory, db_session, settings):
    first, second = make_job(IRIS_MLP), make_job(IRIS_MLP)
    run_training(session_factory, first, settings=settings)
    run_training(session_factory, second, settings=settings)
    losses = [[r.metrics["loss"] for r in curve(db_session, j)] for j in (first, second)]
    assert len(losses[0]) == IRIS_MLP["fit"]["epochs"]  # two empty curves (nothing trained) would be "the same"
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)


def test_a_duplicate_delivery_trains_nothing(make_job, session_factory, db_session, settings):
    job_id = make_job(IRIS_MLP)
    run_training(session_factory, job_id, settings=settings)
    finished = db_session.get(Job, job_id).finished_at

    run_training(session_factory, job_id, settings=settings)

    db_session.expire_all()
    job = db_session.get(Job, job_id)
    assert job.attempts == 1 and job.finished_at == finished
    assert len(curve(db_session, job_id)) == IRIS_MLP["fit"]["epochs"]


def test_a_keras_failure_ends_the_job_failed_with_the_keras_message(make_job, session_factory, db_session, settings):
    # Sparse cross-entropy on 3 units with labels 0..9 cannot run: Keras raises during fit.
    body = spec(DIGITS_CNN, model={"input_shape": [8, 8, 1], "layers": [
        {"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}]})
    job_id = make_job(body)

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.failed and job.stop_reason is StopReason.error
    assert job.error["message"] and "Traceback" not in job.error["message"]


def test_early_stopping_and_keep_best_are_reported(make_job, session_factory, db_session, settings):
    body = spec(IRIS_MLP, fit={"epochs": 60, "callbacks": [
        {"type": "EarlyStopping", "monitor": "loss", "patience": 1, "min_delta": 0.5},
        {"type": "ModelCheckpoint", "monitor": "val_loss", "save_best_only": True}]})
    job_id = make_job(body)

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.stop_reason is StopReason.early_stopping
    assert job.epoch < 60
    assert (settings.artifacts / "jobs" / job_id / "best.keras").exists()


def test_an_exploding_loss_stops_the_job_with_a_diverging_finding(make_job, session_factory, db_session, settings):
    body = spec(IRIS_MLP, compile={"optimizer": {"type": "SGD", "learning_rate": 1e12}}, fit={"epochs": 30},
                data={"scale_x": None})
    job_id = make_job(body)

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.stop_reason is StopReason.diagnosis and job.status is JobStatus.succeeded
    assert job.epoch < 30
    codes = [f["code"] for f in job.findings]
    assert codes[0] == "diverging" and codes[-1] == "verdict"
    assert job.findings[0]["epoch"] == job.epoch == 1 and job.findings[0]["severity"] == "error"
    assert job.findings[-1]["evidence"]["verdict"] == "diverged"


# Also with several steps per TensorFlow call (worker/speed.py): the stop still lands within the epoch.
@pytest.mark.parametrize("fit", [{}, {"batch_size": 4, "speed": {"steps_per_execution": 3}}])
def test_a_cancel_request_stops_a_running_job_within_an_epoch(
    make_job, session_factory, db_session, settings, monkeypatch, fit
):
    job_id = make_job(spec(IRIS_MLP, fit={"epochs": 50, **fit}))
    original = job_store.cancel_requested
    calls = []
    recorded_at_cancel = []

    def poll_then_cancel(factory, claim):  # the user cancels at the second poll (after epoch 1, or during it)
        calls.append(claim)
        if len(calls) == 2:
            with factory() as session, session.begin():
                job = session.get(Job, claim.job_id)
                job.cancel_requested = True
                recorded_at_cancel.append(job.epoch)
        return original(factory, claim)

    monkeypatch.setattr(job_store, "cancel_requested", poll_then_cancel)
    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.cancelled and job.stop_reason is StopReason.cancelled
    (recorded,) = recorded_at_cancel
    assert recorded <= job.epoch <= recorded + 1  # at most the epoch in progress is finished


def test_every_change_is_logged_as_an_event_in_order(make_job, session_factory, db_session, settings):
    from models.tables import JobEvent

    job_id = make_job(spec(IRIS_MLP, fit={"epochs": 2}))
    run_training(session_factory, job_id, settings=settings)

    events = db_session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()
    assert [e.type.value for e in events] == ["job.started", "job.epoch", "job.epoch", "job.finding", "job.succeeded"]
    assert events[3].data["finding"]["code"] == "verdict"
    assert [e.data["epoch"] for e in events[1:3]] == [1, 2]
    assert events[-1].data["status"] == "succeeded" and events[-1].data["stop_reason"] == "completed"


def test_a_job_whose_dataset_is_gone_fails_with_a_data_error_naming_it(make_job, session_factory, db_session, settings):
    job_id = make_job(spec(IRIS_MLP, dataset="ds_gone0000000000000000000"))

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.failed and job.stop_reason is StopReason.error
    assert job.error == {
        "type": "DataError",
        "message": "no dataset with id 'ds_gone0000000000000000000'; upload one with POST /v1/datasets"}
