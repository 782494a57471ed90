"""The diagnosis monitor's memory goes with the checkpoint: saved after each epoch,
restored when a run resumes, trimmed to the epochs the checkpoint holds."""

import math

import numpy as np

from diagnosis.curves import Epoch, Task
from models.findings import Code, Finding
from worker.monitor import DiagnosisMonitor


def monitor(state_path) -> DiagnosisMonitor:
    return DiagnosisMonitor(task=Task(classification=False, loss="mse", target_variance=1.0),
                            probe=(np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")), loss=None,
                            report=lambda f: None, suggest=lambda c: [], stop_on=set(), train_samples=4,
                            batch_size=2, state_path=state_path)


def test_a_resumed_monitor_remembers_up_to_the_checkpoint_and_what_it_raised(tmp_path):
    path = tmp_path / "backup" / "monitor.json"
    before = monitor(path)
    before.history = [Epoch(e, {"loss": 1.0 / e, "val_loss": math.nan}, [0.5, 0.4], None, [0.1, 0.2])
                      for e in (1, 2, 3)]
    before.raised = {Code.unstable: Finding(code=Code.unstable, severity="warning", phase="training", epoch=2,
                                            message="jumpy", evidence={"loss": [1, 2]})}
    before.epoch_seconds = [0.1, 0.1, 0.1]
    before._save()  # epoch 3 saved, then the kill came before its checkpoint: the checkpoint holds 2 epochs

    after = monitor(path)
    after.on_epoch_begin(2)

    assert [e.epoch for e in after.history] == [1, 2] and after.history[1].logs["loss"] == 0.5
    assert math.isnan(after.history[0].logs["val_loss"]) and after.history[0].gradient_norms == [0.1, 0.2]
    assert list(after.raised) == [Code.unstable] and after.raised[Code.unstable].epoch == 2
    assert after.epoch_seconds == [0.1, 0.1]


def test_a_run_from_scratch_starts_with_an_empty_memory(tmp_path):
    path = tmp_path / "monitor.json"
    before = monitor(path)
    before.history = [Epoch(1, {"loss": 1.0})]
    before._save()
    fresh = monitor(path)
    fresh.on_epoch_begin(0)
    assert fresh.history == [] and fresh.raised == {}


def test_a_run_resumed_after_its_last_epoch_still_has_the_history_for_its_verdict(tmp_path):
    path = tmp_path / "monitor.json"
    before = monitor(path)
    before.history = [Epoch(e, {"loss": 1.0}) for e in (1, 2, 3)]
    before._save()
    finished = type("Model", (), {"_initial_epoch": 3})()  # the checkpoint holds every epoch: fit runs none

    after = monitor(path)
    after.set_model(finished)
    after.on_train_end()
    assert [e.epoch for e in after.history] == [1, 2, 3]
