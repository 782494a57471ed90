"""``resources.gpus: N`` trains with MirroredStrategy over N devices of one worker (issue 12),
tested on the CPU split into two logical devices, in a process of its own (tests/worker/mirrored_run.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Same seed, same batches: the two runs differ only in how the sums of a batch are split and
# reduced across devices (float order, and the short last batch split unevenly), well below this.
RELATIVE_TOLERANCE = 0.02


def test_two_logical_devices_train_the_same_curve_as_one_and_the_job_records_them(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")},
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tests.worker.mirrored_run", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    single, mirrored = (json.loads(done.stdout.strip().splitlines()[-1])[k] for k in ("0", "2"))

    for run in (single, mirrored):
        assert run["status"] == "succeeded", run["error"]
        assert len(run["loss"]) == 6 and run["loss"][-1] < run["loss"][0]  # it learns
    assert mirrored["devices"] == ["/job:localhost/replica:0/task:0/device:CPU:0",
                                   "/job:localhost/replica:0/task:0/device:CPU:1"]
    assert len(single["devices"]) == 1
    for key in ("loss", "val_loss"):
        for one, two in zip(single[key], mirrored[key], strict=True):
            assert abs(one - two) <= RELATIVE_TOLERANCE * abs(one), (key, single[key], mirrored[key])
    # The diagnosis probe ran the mirrored model every epoch (gradient norms, pinned outputs), close to the single run.
    assert len(mirrored["probes"]) == 6
    for (pinned_one, norms_one), (pinned_two, norms_two) in zip(single["probes"], mirrored["probes"], strict=True):
        assert pinned_two is not None and norms_two is not None
        assert abs(pinned_one - pinned_two) <= 0.1
        assert all(abs(a - b) <= 0.05 * a + 1e-3 for a, b in zip(norms_one, norms_two, strict=True))
