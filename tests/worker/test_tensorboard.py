"""A job's TensorBoard event files, read back with TensorBoard's own event reader."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray

from datastore.artifacts import ArtifactStore
from models.tables import Job
from tests.specs import IRIS_MLP, spec
from tests.worker.test_training import curve
from worker.training import run_training


def read(folder: Path) -> EventAccumulator:
    """Every event of ``folder`` (size_guidance 0: keep them all, TensorBoard samples by default)."""
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag → [(step, value)] of the tags TensorBoard's scalars plugin shows (v2 scalars are tensors with its
    plugin's metadata, as tf.summary.scalar writes them)."""
    accumulator = read(folder)
    return {tag: [(event.step, float(make_ndarray(event.tensor_proto))) for event in accumulator.Tensors(tag)]
            for tag in accumulator.PluginTagToContent("scalars")}


def has_graph(folder: Path) -> bool:
    return read(folder).Tags()["graph"]


def test_a_job_writes_per_epoch_scalars_monitor_measures_and_the_graph(make_job, session_factory, db_session,
                                                                      settings):
    job_id = make_job(spec(IRIS_MLP, fit={"epochs": 4}))

    run_training(session_factory, job_id, settings=settings)

    job = db_session.get(Job, job_id)
    logs = ArtifactStore(settings.artifacts).tensorboard_dir(job_id)
    train, validation = scalars(logs / "train"), scalars(logs / "validation")
    assert {"epoch_loss", "epoch_accuracy"} <= set(train) and {"epoch_loss", "epoch_accuracy"} <= set(validation)
    for tags in (train, validation):
        assert [step for step, _ in tags["epoch_loss"]] == [1, 2, 3, 4]  # one value per epoch
    # The same values as the job's curves (what GET /curves answers).
    rows = {r.epoch: r.metrics for r in curve(db_session, job_id)}
    assert [v for _, v in train["epoch_loss"]] == pytest.approx([rows[e]["loss"] for e in range(1, 5)], rel=1e-5)
    assert [v for _, v in validation["epoch_accuracy"]] == pytest.approx(
        [rows[e]["val_accuracy"] for e in range(1, 5)], rel=1e-5)
    assert job.last_metrics["epoch"] == 4
    # The monitor's probe: saturation and one gradient norm per weight layer (two Dense layers).
    assert [s for s, _ in train["monitor/saturation"]] == [1, 2, 3, 4]
    assert {"monitor/gradient_norm/layer_0", "monitor/gradient_norm/layer_1"} <= set(train)
    assert all(v > 0 for _, v in train["monitor/gradient_norm/layer_0"])
    assert has_graph(logs / "train")
