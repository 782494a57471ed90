"""The terminal client against the real API and a real worker: submit --follow, follow, jobs, curves."""

import json
from contextlib import nullcontext

import pytest
from fastapi.testclient import TestClient

from cli import client as cli_client
from cli.main import main
from tests.e2e.conftest import finished, wait_for
from tests.specs import DIGITS_CNN, IRIS_MLP, spec

pytestmark = pytest.mark.e2e


@pytest.fixture
def trainyard(live: TestClient, monkeypatch, capsys):
    """Run ``trainyard ARGV`` in this process, its HTTP going to the test API; returns (exit status, output)."""
    monkeypatch.setattr(cli_client, "open_client", lambda url, key=None: nullcontext(live))
    monkeypatch.setenv("COLUMNS", "80")  # captured output is a pipe: nothing may wrap at 80 columns there

    def run(*argv: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out + captured.err
    return run


def test_submit_follow_shows_each_epoch_and_exits_zero_on_success(trainyard, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec(DIGITS_CNN, fit={"epochs": 3})))

    status, out = trainyard("submit", str(path), "--follow")

    assert status == 0, out
    assert "queued" in out and "started: 3 epochs" in out
    assert "epoch 1/3 running…" in out  # before the first epoch ends, a line says it is under way
    lines = [line for line in out.splitlines() if line.startswith("epoch ") and not line.endswith("running…")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(line.endswith(" s)") for line in lines)  # each duration on its epoch's line, not wrapped apart
    assert "val_loss" in lines[0] and "succeeded (completed) after 3/3 epochs" in out and "test: loss" in out


def test_a_job_that_fails_exits_non_zero_with_its_error(trainyard, tmp_path):
    # Sparse cross-entropy on one-hot targets: Keras refuses it when fit starts.
    body = spec(IRIS_MLP, compile={"loss": "sparse_categorical_crossentropy"}, force=True)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(body))

    status, out = trainyard("submit", str(path), "--follow")

    assert status == 1, out
    assert "failed (error)" in out and "ValueError" in out


def test_follow_a_cancelled_job_exits_three_and_jobs_lists_it(trainyard, live: TestClient):
    job_id = live.post("/v1/jobs", json=spec(DIGITS_CNN, name="cli-cancel", fit={"epochs": 300})).json()["id"]
    live.post(f"/v1/jobs/{job_id}/cancel")
    wait_for(live, job_id, finished, timeout=60)

    status, out = trainyard("follow", job_id)
    assert status == 3 and "cancelled" in out

    status, out = trainyard("jobs", "--name", "cli-cancel")
    assert status == 0 and job_id in out and "cancelled" in out


def test_curves_as_a_table_and_as_csv(trainyard, live: TestClient):
    job_id = live.post("/v1/jobs", json=IRIS_MLP).json()["id"]
    wait_for(live, job_id, finished)

    status, out = trainyard("curves", job_id)
    assert status == 0 and "val_loss" in out.splitlines()[0]
    status, out = trainyard("curves", job_id, "--csv")
    assert status == 0 and out.splitlines()[0].startswith("epoch,loss,") and len(out.splitlines()) == 4


def test_api_errors_are_shown_with_their_path_and_exit_two(trainyard, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec(IRIS_MLP, fit={"n_epoch": 3})))
    status, out = trainyard("submit", str(path))
    assert status == 2 and "fit.n_epoch" in out and "did you mean 'epochs'" in out

    status, out = trainyard("follow", "job_nope")
    assert status == 2 and "no job with id 'job_nope'" in out

    (tmp_path / "broken.json").write_text("{")
    status, out = trainyard("submit", str(tmp_path / "broken.json"))
    assert status == 2 and "is not valid JSON" in out


def test_a_refused_spec_shows_its_suggested_fix(trainyard, tmp_path):
    from tests.api.test_diagnosis_api import SOFTMAX_ON_ONE_UNIT

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SOFTMAX_ON_ONE_UNIT))
    status, out = trainyard("submit", str(path))
    assert status == 2 and "preflight found" in out
    assert "  try: " in out and "the spec merge patch: {" in out
