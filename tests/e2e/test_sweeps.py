"""Sweeps against the real service: the API, `trainyard worker` (Celery, Keras), the reconciler
(`trainyard worker --control`), Postgres (Optuna's study in its schema) and a private Redis."""

import json
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import select

from cli import client as cli_client
from cli.main import main
from models.tables import EpochMetric, Job
from sweeps.storage import storage
from tests.auth import new_key
from tests.e2e.stack import WAIT, SupervisedWorker
from tests.e2e.test_recovery import Stack, _stack, running_past
from tests.servers import RedisServer, wait_until
from tests.specs import DIGITS_CNN, IRIS_MLP, spec
from trainyard import Client

pytestmark = pytest.mark.e2e

HEALTHY = [0.01, 0.1]
ABSURD = 1e12  # SGD at this rate: the loss is NaN within the first epoch


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with RedisServer.started() as redis_server:
        yield from _stack(tmp_path_factory.mktemp("sweeps"), redis_server)


@pytest.fixture
def start_worker(stack: Stack) -> Iterator[Callable[[], SupervisedWorker]]:
    started: list[SupervisedWorker] = []

    def start() -> SupervisedWorker:
        env = {**stack.env, "TRAINYARD_CPU_SLOTS": "2"}  # two trials at once (parallelism 2)
        worker = SupervisedWorker(["--gpus", "0"], env, stack.root / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_for_log("ready.", timeout=WAIT)
        return worker

    yield start
    for worker in started:
        worker.stop()


def submit(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.api.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for_end(stack: Stack, sweep_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        sweep = stack.api.get(f"/v1/sweeps/{sweep_id}").json()
        return sweep if sweep["status"] != "running" else None

    return wait_until(ended, WAIT, f"sweep {sweep_id} to end")


def trial_jobs(stack: Stack, sweep_id: str) -> list[Job]:
    with stack.factory() as session:
        return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.trial_number)))


def told(stack: Stack, sweep_id: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=sweep_id, storage=storage(stack.settings.database_dsn)).get_trials()


def test_a_grid_over_the_learning_rate_runs_each_trial_once_ranks_them_and_stops_the_absurd_one(
    stack: Stack, start_worker
):
    start_worker()
    base = spec(IRIS_MLP, compile={"optimizer": {"type": "SGD", "learning_rate": 0.01}}, fit={"epochs": 4})
    sweep = submit(stack, {"spec": base, "space": {"compile.optimizer.learning_rate": {"choice": [*HEALTHY, ABSURD]}},
                           "sampler": "grid", "parallelism": 2, "name": "lr-grid"})
    done = wait_for_end(stack, sweep["id"])

    assert done["status"] == "succeeded"
    trials = {t["params"]["compile.optimizer.learning_rate"]: t for t in done["trials"]}
    assert sorted(trials) == sorted([*HEALTHY, ABSURD]) and len(done["trials"]) == 3  # each point once
    jobs = trial_jobs(stack, sweep["id"])
    assert [j.trial_number for j in jobs] == [0, 1, 2] and all(j.attempts == 1 for j in jobs)
    absurd = trials[ABSURD]
    assert (absurd["status"], absurd["stop_reason"], absurd["stopped_by"], absurd["state"]) == (
        "succeeded", "diagnosis", "diverging", "pruned")
    assert absurd["epochs_run"] < 4 and absurd["saved_s"] > 0 and done["pruning_saved_s"]["diagnosis"] > 0
    healthy = sorted((trials[rate] for rate in HEALTHY), key=lambda t: t["objective"])
    assert [t["state"] for t in healthy] == ["complete", "complete"]
    assert [t["rank"] for t in healthy] == [1, 2]
    assert done["best"]["number"] == healthy[0]["number"] and done["best"]["objective"] == healthy[0]["objective"]
    assert set(done["importances"]) == {"compile.optimizer.learning_rate"}
    assert [t.state for t in told(stack, sweep["id"])] == [
        TrialState.PRUNED if trials[ABSURD]["number"] == n else TrialState.COMPLETE for n in range(3)]
    # A trial is an ordinary job: its curve, findings and model are there.
    job = stack.api.get(f"/v1/jobs/{absurd['job_id']}").json()
    codes = [f["code"] for f in job["findings"]]
    assert "learning_rate_extreme" in codes and "diverging" in codes  # its preflight finding, then the stop
    assert job["verdict"]["evidence"]["verdict"] == "diverged"
    assert stack.api.get(f"/v1/jobs/{healthy[0]['job_id']}/model").status_code == 200

    # Its events, replayed whole (the sweep has ended: the stream ends after sweep.succeeded).
    stream = stack.api.get(f"/v1/sweeps/{sweep['id']}/events")
    kinds = [line.removeprefix("event: ") for line in stream.text.splitlines() if line.startswith("event: ")]
    assert sorted(kinds.count(k) for k in ("trial.started", "trial.finished", "trial.pruned")) == [1, 2, 3]
    assert "sweep.best" in kinds and kinds[-1] == "sweep.succeeded"

    # Another tenant sees none of it.
    other = {"Authorization": f"Bearer {new_key(stack.factory, 'someone-else')}"}
    assert stack.api.get(f"/v1/sweeps/{sweep['id']}", headers=other).status_code == 404
    assert stack.api.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=other).status_code == 404
    assert stack.api.get("/v1/sweeps", headers=other).json()["items"] == []
    assert stack.api.get(f"/v1/sweeps/{sweep['id']}/events", headers=other).status_code == 404
    assert stack.api.get(f"/v1/jobs/{healthy[0]['job_id']}", headers=other).status_code == 404


def test_a_worker_killed_mid_sweep_loses_no_trial_and_duplicates_none(stack: Stack, start_worker):
    doomed = start_worker()
    base = spec(DIGITS_CNN, fit={"epochs": 8, "batch_size": 16})
    sweep = submit(stack, {"spec": base, "space": {"compile.optimizer.learning_rate": {"choice": [0.003, 0.01, 0.03]}},
                           "sampler": "grid", "parallelism": 1, "name": "killed",
                           "pruning": {"pruner": "none", "stop_on": ["diverging"]}})
    first = sweep["trials"][0]["job_id"]
    stack.wait(first, running_past(2), "running past epoch 2")
    doomed.kill()  # kill -9, every process of the worker
    killed_at = time.monotonic()
    start_worker()
    done = wait_for_end(stack, sweep["id"])
    print(f"\nsweep with a killed worker: done {time.monotonic() - killed_at:.1f} s after the kill")

    assert done["status"] == "succeeded"
    jobs = trial_jobs(stack, sweep["id"])
    assert [j.trial_number for j in jobs] == [0, 1, 2]  # no trial lost, none duplicated
    assert jobs[0].id == first and jobs[0].attempts == 2  # the killed trial is the same job, run again
    assert sorted(j.spec["compile"]["optimizer"]["learning_rate"] for j in jobs) == [0.003, 0.01, 0.03]
    with stack.factory() as session:
        for job in jobs:
            epochs = session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job.id)
                                     .order_by(EpochMetric.epoch)).all()
            assert list(epochs) == list(range(1, 9))
    trials = told(stack, sweep["id"])
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3  # each told once, with its own job's result
    assert [t.user_attrs["job_id"] for t in trials] == [j.id for j in jobs]
    assert [t["objective"] for t in done["trials"]] == [t.value for t in trials]


def test_the_cli_starts_a_sweep_follows_it_and_lists_it(stack: Stack, start_worker, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_client, "open_client", lambda url, key=None: nullcontext(stack.api))
    start_worker()
    spec_path, space_path = tmp_path / "spec.json", tmp_path / "space.json"
    spec_path.write_text(json.dumps(spec(IRIS_MLP, compile={"optimizer": {"type": "Adam", "learning_rate": 0.01}},
                                         fit={"epochs": 2})))
    space_path.write_text(json.dumps({"compile.optimizer.learning_rate": {"choice": [0.003, 0.03]}}))

    def trainyard(*argv: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out + captured.err

    status, out = trainyard("sweep", str(spec_path), str(space_path), "--sampler", "grid", "--name", "cli-grid",
                            "--follow")
    assert status == 0, out
    assert "2 trials (grid)" in out and "trial 0 started" in out and "new best: trial" in out
    assert out.count("complete") >= 4  # each trial's line, and its row in the final table
    status, listed = trainyard("sweeps")
    assert status == 0 and "cli-grid" in listed and "succeeded" in listed
    # The Python client reads the same sweep.
    [latest] = Client(http=stack.api).sweeps.list(limit=1)
    assert latest["name"] == "cli-grid" and Client(http=stack.api).sweeps.wait(latest["id"])["best"] is not None


def test_a_sweep_with_folds_runs_each_trial_as_a_cross_validation_run_and_stops_a_doomed_one_whole(
    stack: Stack, start_worker
):
    start_worker()
    base = spec(IRIS_MLP, compile={"optimizer": {"type": "SGD", "learning_rate": 0.01}}, fit={"epochs": 4},
                data={"folds": 2})
    del base["data"]["validation_split"]  # each fold validates on its held-out part
    sweep = submit(stack, {"spec": base, "space": {"compile.optimizer.learning_rate": {"choice": [0.1, ABSURD]}},
                           "sampler": "grid", "parallelism": 2, "name": "cv-grid", "pruning": {"pruner": "none"}})
    done = wait_for_end(stack, sweep["id"])

    assert done["status"] == "succeeded"
    trials = {t["params"]["compile.optimizer.learning_rate"]: t for t in done["trials"]}
    runs = trial_jobs(stack, sweep["id"])
    assert [(j.trial_number, j.cv_folds, j.attempts) for j in runs] == [(0, 2, 0), (1, 2, 0)]  # never trained
    with stack.factory() as session:
        folds = {run.id: session.scalars(select(Job).where(Job.cv_parent_id == run.id).order_by(Job.fold)).all()
                 for run in runs}
    assert all(len(f) == 2 and all(j.attempts <= 1 for j in f) for f in folds.values())  # each fold once at most
    healthy = trials[0.1]
    run = stack.api.get(f"/v1/jobs/{healthy['job_id']}").json()
    assert (healthy["state"], run["status"], run["cv"]["finished"]) == ("complete", "succeeded", 2)
    assert healthy["objective"] == pytest.approx(run["cv"]["metrics"]["val_loss"]["mean"])  # the mean over folds
    assert healthy["epochs_run"] == healthy["epochs"] == 8 and healthy["rank"] == 1
    absurd = trials[ABSURD]
    assert (absurd["state"], absurd["stop_reason"], absurd["stopped_by"]) == ("pruned", "diagnosis", "diverging")
    stops = sorted((j.stop_reason.value if j.stop_reason else None) for j in folds[absurd["job_id"]])
    assert stops in (["cancelled", "diagnosis"], ["diagnosis", "diagnosis"])  # the other fold: cancelled, or
    assert absurd["epochs_run"] < 8 and done["pruning_saved_s"]["diagnosis"] > 0  # stopped by its own diagnosis
    [trial_told] = [t for t in told(stack, sweep["id"]) if t.number == absurd["number"]]
    assert trial_told.state is TrialState.PRUNED and trial_told.user_attrs["stopped_by"] == "diverging"
    assert done["best"]["number"] == healthy["number"]
