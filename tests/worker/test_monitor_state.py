"""The diagnosis monitor's memory goes with the checkpoint: saved after each epoch,
restored when a run resumes, trimmed to the epochs the checkpoint holds; states saved
before the noise fields still load; weak (info) results wait for the end of training."""

import json
import math

import numpy as np

from diagnosis.curves import Epoch, Task
from diagnosis.rules.common import RuleResult
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


def test_a_state_saved_before_the_noise_fields_still_loads(tmp_path):
    path = tmp_path / "monitor.json"
    old = {"history": [{"epoch": e, "logs": {"loss": 1.0}, "batch_losses": [], "pinned_fraction": None,
                        "gradient_norms": None} for e in (1, 2)],
           "raised": [], "stopped_by": None, "seconds": 0.2, "epoch_seconds": [0.1, 0.1]}
    path.write_text(json.dumps(old))
    after = monitor(path)
    after.on_epoch_begin(2)
    assert [e.epoch for e in after.history] == [1, 2] and after.history[0].val_loss_std is None
    assert after.pending == {}


def test_a_weak_result_waits_and_is_reported_as_info_when_training_ends(tmp_path, monkeypatch):
    reported: list[Finding] = []
    watch = monitor(tmp_path / "monitor.json")
    watch.report = reported.append
    watch.set_model(type("Model", (), {"_initial_epoch": 0, "stop_training": False})())
    weak = RuleResult("info", "a little jumpy", {"confidence": 1.2})
    monkeypatch.setattr("worker.monitor.RULES", {Code.unstable: lambda history, task: weak})
    monkeypatch.setattr(DiagnosisMonitor, "_probe", lambda self: (None, None))
    for epoch in range(3):
        watch.on_epoch_begin(epoch)
        watch.on_epoch_end(epoch, {"loss": 1.0})
    assert reported == [] and watch.pending[Code.unstable].epoch == 3
    saved = json.loads((tmp_path / "monitor.json").read_text())
    assert saved["pending"][0]["code"] == "unstable" and saved["history"][0]["n_train"] == 4
    watch.on_train_end()
    assert [(f.code, f.severity, f.epoch) for f in reported] == [(Code.unstable, "info", 3)]
