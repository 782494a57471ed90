"""No state crosses from one job to the next in a worker, and budgets hold there too
(issue 8, items 3 and 6). The rows are inserted directly: the API's checks are bypassed,
as a worker must assume they could be."""

import keras
import pytest
import tensorflow as tf
from sqlalchemy import select

from keras_bridge import global_state
from keras_bridge import layers as bridge_layers
from models.enums import JobStatus
from models.tables import EpochMetric, Job
from tests.specs import IRIS_MLP, spec
from worker.training import run_training

SET_MAX_EPOCHS = {"module": "keras.config", "class_name": "function", "config": "set_max_epochs",
                  "registered_name": None}
POISON = spec(IRIS_MLP, model={"input_shape": [4], "layers": [
    {"type": "Dense", "units": 8, "activation": SET_MAX_EPOCHS},
    {"type": "Dense", "units": 3, "activation": "softmax"}]})


@pytest.fixture(autouse=True)
def clean_process():
    global_state.reset()
    yield
    global_state.reset()


def epochs_of(db_session, job_id: str) -> int:
    return len(db_session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)).all())


def test_the_worker_refuses_a_function_from_another_module_and_the_next_job_trains(
    make_job, session_factory, db_session, settings
):
    poisoned, normal = make_job(POISON), make_job(IRIS_MLP)

    run_training(session_factory, poisoned, settings=settings)
    run_training(session_factory, normal, settings=settings)

    first, second = db_session.get(Job, poisoned), db_session.get(Job, normal)
    assert first.status is JobStatus.failed and first.error["type"] == "SpecError"
    assert "model.layers.0.activation" in first.error["message"]
    assert keras.config.max_epochs() is None
    assert second.status is JobStatus.succeeded and epochs_of(db_session, normal) == IRIS_MLP["fit"]["epochs"]


def skip_the_namespace_check(monkeypatch):
    """Stands for a route into Keras's global configuration that no check knows yet."""
    monkeypatch.setattr(bridge_layers, "check_activation", lambda value, loc: None)


def test_a_job_that_changed_global_state_does_not_reach_the_next_one(
    monkeypatch, make_job, session_factory, db_session, settings
):
    skip_the_namespace_check(monkeypatch)
    poisoned, normal = make_job(POISON), make_job(IRIS_MLP)

    run_training(session_factory, poisoned, settings=settings)
    assert keras.config.max_epochs() is not None  # the first job did change the process (a symbolic tensor)
    run_training(session_factory, normal, settings=settings)

    second = db_session.get(Job, normal)
    assert second.status is JobStatus.succeeded, second.error
    assert epochs_of(db_session, normal) == IRIS_MLP["fit"]["epochs"]


def test_without_the_reset_the_next_job_would_fail(monkeypatch, make_job, session_factory, db_session, settings):
    # The control for the test above: the hazard is real, the reset is what removes it.
    skip_the_namespace_check(monkeypatch)
    monkeypatch.setattr(global_state, "reset", lambda **_: None)
    poisoned, normal = make_job(POISON), make_job(IRIS_MLP)

    run_training(session_factory, poisoned, settings=settings)
    run_training(session_factory, normal, settings=settings)

    assert db_session.get(Job, normal).status is JobStatus.failed
    monkeypatch.undo()


def test_the_worker_checks_the_budgets_again_before_allocating(make_job, session_factory, db_session, settings):
    huge = make_job(spec(IRIS_MLP, model={"input_shape": [4], "layers": [
        {"type": "Dense", "units": 1_000_000_000}, {"type": "Dense", "units": 3, "activation": "softmax"}]}))
    small_worker = settings.model_copy(update={"worker_memory_bytes": 1024})
    tight = make_job(IRIS_MLP)

    run_training(session_factory, huge, settings=settings)
    run_training(session_factory, tight, settings=small_worker)

    huge_job, tight_job = db_session.get(Job, huge), db_session.get(Job, tight)
    assert huge_job.error["type"] == "SpecError" and "model.layers.0" in huge_job.error["message"]
    assert "limit of 50,000,000" in huge_job.error["message"]
    assert tight_job.error["type"] == "SpecError" and "fit.batch_size" in tight_job.error["message"]


def test_running_out_of_memory_in_training_is_reported_as_such_with_the_estimate(monkeypatch, make_job, session_factory,
                                                                                  db_session, settings):
    # A real allocation failure cannot be provoked safely here: fit raises what TensorFlow raises.
    def exhausted(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,4096,4096,3]")

    monkeypatch.setattr(keras.Model, "fit", exhausted)
    job_id = make_job(IRIS_MLP)

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    assert job.status is JobStatus.failed and job.error["type"] == "OutOfMemory"
    assert "one batch of 16 needs about" in job.error["message"] and "a worker offers 4.00 GiB" in job.error["message"]
