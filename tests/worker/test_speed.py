"""Compiled for speed (worker/speed.py): the chosen steps per execution, the spec's overrides, and what
the diagnosis and the stop callbacks keep when Keras runs several steps per call."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from pydantic import ValidationError

from diagnosis.curves import Epoch, Task
from diagnosis.noise import batch_variation, per_sample_std
from models.enums import JobStatus
from models.spec import JobSpec, SpeedSpec
from models.tables import Job
from tests.specs import IRIS_MLP, spec
from tests.worker.test_training import curve
from worker.callbacks import RecordEpochs, StopWhen
from worker.monitor import DiagnosisMonitor
from worker.speed import MAX_STEPS_PER_EXECUTION, MIN_CHUNKS, Speed, auto_steps_per_execution
from worker.training import run_training


@pytest.mark.parametrize(("batches", "steps"), [(1, 1), (9, 1), (16, 2), (100, 12), (286, 32), (100_000, 32)])
def test_steps_per_execution_leave_enough_chunks_in_an_epoch(batches, steps):
    assert auto_steps_per_execution(batches) == steps
    assert steps <= MAX_STEPS_PER_EXECUTION
    assert batches < MIN_CHUNKS or math.ceil(batches / steps) >= MIN_CHUNKS


def test_speed_resolves_from_the_epoch_size_unless_the_spec_says():
    auto = Speed.resolve(SpeedSpec(), train_samples=1000, batch_size=10, gpu=False)
    assert auto == Speed(steps_per_execution=12, jit_compile="auto", mixed_precision=False)
    chosen = SpeedSpec(steps_per_execution=5, jit_compile=False, mixed_precision=True)
    assert Speed.resolve(chosen, train_samples=1000, batch_size=10, gpu=True) == Speed(5, False, True)
    assert Speed.resolve(chosen, train_samples=1000, batch_size=10, gpu=False).mixed_precision is False  # CPU


def test_the_speed_block_round_trips_and_refuses_bad_values():
    body = spec(IRIS_MLP, fit={"speed": {"steps_per_execution": 7, "jit_compile": True, "mixed_precision": True}})
    parsed = JobSpec.model_validate(body)
    assert JobSpec.model_validate(parsed.model_dump(mode="json")) == parsed
    assert parsed.fit.speed == SpeedSpec(steps_per_execution=7, jit_compile=True, mixed_precision=True)
    assert JobSpec.model_validate(IRIS_MLP).fit.speed == SpeedSpec()
    for bad in ({"steps_per_execution": 0}, {"steps_per_execution": "fast"}, {"steps_per_execution": 2.0},
                {"jit_compile": "yes"}, {"mixed_precision": "auto"}, {"xla": True}):
        with pytest.raises(ValidationError):
            JobSpec.model_validate(spec(IRIS_MLP, fit={"speed": bad}))


def _monitor(train_samples: int, batch_size: int) -> DiagnosisMonitor:
    return DiagnosisMonitor(task=Task(classification=False, loss="mse", target_variance=1.0),
                            probe=(np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")), loss=None,
                            report=lambda f: None, suggest=lambda c: [], stop_on=set(),
                            train_samples=train_samples, batch_size=batch_size)


def test_chunk_losses_are_recovered_from_the_running_means():
    # 9 samples in batches of 2 (the last holds 1), losses 1..5; steps_per_execution=2: Keras calls
    # the hook after batches 1, 3 and 5 (5 is past the end: the last chunk holds one batch).
    losses, sizes = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([2, 2, 2, 2, 1])
    running = np.cumsum(losses * sizes) / np.cumsum(sizes)
    monitor = _monitor(train_samples=9, batch_size=2)
    for end_step, mean in ((1, running[1]), (3, running[3]), (5, running[4])):
        monitor.on_train_batch_end(end_step, {"loss": mean})
    np.testing.assert_allclose(monitor._batch_losses(), [1.5, 3.5, 5.0])
    single = _monitor(train_samples=9, batch_size=2)
    for step, mean in enumerate(running):
        single.on_train_batch_end(step, {"loss": mean})
    np.testing.assert_allclose(single._batch_losses(), losses)


def test_the_noise_of_chunk_means_is_scaled_back_to_a_batch():
    rng = np.random.default_rng(0)
    batches = 2.0 + rng.normal(0, 0.2, 4096)  # batches of 8 samples: per-sample std 0.2 * sqrt(8)
    chunks = batches.reshape(-1, 16).mean(axis=1)  # 256 means of 16 batches
    per_batch = batch_variation(Epoch(1, {}, list(batches)))
    per_chunk = batch_variation(Epoch(1, {}, list(chunks), batches_per_loss=16))
    assert per_batch == pytest.approx(0.1, rel=0.1)
    assert per_chunk == pytest.approx(per_batch, rel=0.15)
    assert batch_variation(Epoch(1, {}, list(chunks))) < per_batch / 3  # unscaled, it would look 4x calmer
    # The monitor reads a chunk as one batch of 16 x 8 samples (worker/monitor.py _diagnose).
    assert per_sample_std(list(chunks), 8 * 16) == pytest.approx(per_sample_std(list(batches), 8), rel=0.15)
    assert per_sample_std(list(batches), 8) == pytest.approx(0.2 * math.sqrt(8), rel=0.1)


def _fit(steps: int, callbacks: list[keras.callbacks.Callback], epochs: int = 2) -> keras.callbacks.History:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 3)).astype("float32"), rng.normal(size=(50, 1)).astype("float32")
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", steps_per_execution=steps)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)  # 13 batches, the last of 2 samples
    return model.fit(data, validation_data=data, epochs=epochs, callbacks=callbacks, shuffle=False,
                     verbose=0)


def test_several_steps_per_call_give_the_same_curves_and_the_chunk_means_of_the_batch_losses():
    one, three = _monitor(50, 4), _monitor(50, 4)
    curves = [_fit(1, [one]).history, _fit(3, [three]).history]
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(curves[0][key], curves[1][key], rtol=1e-5)
    sizes = np.array([4] * 12 + [2])
    for single, chunked in zip(one.history, three.history):
        assert len(single.batch_losses) == 13 and len(chunked.batch_losses) == 5
        assert (single.batches_per_loss, chunked.batches_per_loss) == (1, 3)
        b = np.array(single.batch_losses)
        expected = [np.average(b[i:i + 3], weights=sizes[i:i + 3]) for i in range(0, 13, 3)]
        np.testing.assert_allclose(chunked.batch_losses, expected, rtol=1e-4)


def test_a_stop_asked_mid_epoch_ends_the_run_within_that_epoch_with_several_steps_per_call():
    polls = []
    stop = StopWhen(lambda: polls.append(1) or len(polls) >= 2, poll_seconds=0.0)  # true at the 2nd chunk
    seen = []

    class Batches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((self.model.steps_per_execution, batch))

    history = _fit(3, [stop, Batches()], epochs=5)
    assert stop.stopped and len(history.history["loss"]) == 1  # the first epoch, cut short
    assert seen == [(3, 2), (3, 5)]  # two chunks of the epoch's five ran


def test_the_first_epoch_tracing_is_reported_apart_from_training():
    epochs = RecordEpochs(lambda **_: None)
    epochs.durations, epochs.cpu_seconds = [5.0, 1.0, 1.2, 0.8], [6.0, 1.5, 1.5, 1.5]
    assert epochs.timing() == {"epochs": 4, "warmup_s": 4.0, "train_s": 4.0,  # 1 of epoch 1, 3 after
                               "epoch_cpu_s": [6.0, 1.5, 1.5, 1.5]}
    epochs.durations, epochs.cpu_seconds = [2.0], [2.5]
    assert epochs.timing() == {"epochs": 1, "warmup_s": None, "train_s": 2.0, "epoch_cpu_s": [2.5]}


def test_a_job_runs_with_the_spec_s_steps_per_execution_and_reports_its_settings_and_warmup(
    make_job, session_factory, db_session, settings
):
    base = spec(IRIS_MLP, fit={"epochs": 3, "batch_size": 4})
    jobs = [make_job(base), make_job(spec(base, fit={"speed": {"steps_per_execution": 4}}))]
    for job_id in jobs:
        run_training(session_factory, job_id, settings=settings)
    auto, chunked = (db_session.get(Job, j) for j in jobs)
    assert auto.status is chunked.status is JobStatus.succeeded
    # 120 training samples in batches of 4: 30 batches, auto picks 3; the spec asked for 4. The 30
    # validation samples are read in one forward batch.
    assert auto.data_summary["speed"] == {"steps_per_execution": 3, "jit_compile": "auto", "mixed_precision": False,
                                          "forward_batch_size": 30}
    assert chunked.data_summary["speed"]["steps_per_execution"] == 4
    timing = chunked.data_summary["timing"]
    assert timing["epochs"] == 3 and timing["warmup_s"] >= 0 and timing["train_s"] > 0
    assert len(timing["epoch_cpu_s"]) == 3 and all(c > 0 for c in timing["epoch_cpu_s"])
    losses = [[r.metrics[k] for r in curve(db_session, j) for k in ("loss", "val_loss")] for j in jobs]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)



def test_mixed_precision_builds_float16_layers_until_the_next_job_resets_it():
    from keras_bridge import global_state

    Speed(steps_per_execution=1, jit_compile="auto", mixed_precision=True).apply_policy()
    try:
        layer = keras.layers.Dense(2)
        assert (layer.compute_dtype, layer.variable_dtype) == ("float16", "float32")
    finally:
        global_state.reset()
    assert keras.layers.Dense(2).compute_dtype == "float32"
