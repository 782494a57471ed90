"""``trainyard tensorboard`` for real: the CLI downloads two finished jobs' event files from the API server
and starts the real TensorBoard (the dev extra) over them on a spare port; TensorBoard's own scalars API
answers each job's curves; Ctrl-C stops the CLI and TensorBoard with it."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ROOT
from tests.servers import ApiServer, free_port, listening, stop_process, wait_until
from tests.specs import IRIS_MLP, spec

pytestmark = pytest.mark.e2e

pytest.importorskip("tensorboard", reason="tensorboard is in the dev extra")
WAIT = 240


@pytest.fixture(scope="module")
def http(api_server: ApiServer, server_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {server_key}"}, timeout=30) as c:
        yield c


def trained(http: httpx.Client, epochs: int) -> str:
    job_id = http.post("/v1/jobs", json=spec(IRIS_MLP, fit={"epochs": epochs})).json()["id"]
    deadline = time.monotonic() + WAIT
    while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    return job_id


@pytest.fixture
def tensorboard(api_server: ApiServer, server_key: str, tmp_path: Path) -> Iterator[Any]:
    """Start ``trainyard tensorboard IDS`` (in its own session, as a terminal runs it); stopped with Ctrl-C."""
    started: list[subprocess.Popen] = []

    def start(*job_ids: str, port: int) -> subprocess.Popen:
        argv = [sys.executable, "-m", "cli.main", "tensorboard", *job_ids, "--port", str(port),
                "--logdir", str(tmp_path / "logs"), "--url", api_server.url, "--api-key", server_key]
        process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   stdout=(tmp_path / "cli.log").open("ab"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:  # a test that failed midway leaves nothing running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        stop_process(process)


def scalars(board: httpx.Client, run: str, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of one run's tag, from TensorBoard's scalars plugin."""
    response = board.get("/data/plugin/scalars/scalars", params={"run": run, "tag": tag})
    assert response.status_code == 200, response.text
    return [(step, value) for _, step, value in response.json()]


def test_tensorboard_serves_two_finished_jobs_scalars_and_stops_on_ctrl_c(http, tensorboard, tmp_path):
    first, second = trained(http, epochs=3), trained(http, epochs=4)
    port = free_port("TRAINYARD_TEST_TENSORBOARD_PORTS", "18600-18699")

    process = tensorboard(first, second, port=port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as board:
        def runs() -> dict[str, Any] | None:
            assert process.poll() is None, (tmp_path / "cli.log").read_text(errors="replace")[-3000:]
            try:
                tags = board.get("/data/plugin/scalars/tags").json()
            except httpx.HTTPError:
                return None  # not listening yet
            wanted = {f"{job}/{split}" for job in (first, second) for split in ("train", "validation")}
            return tags if wanted <= set(tags) else None  # TensorBoard loads the logdir in the background

        tags = wait_until(runs, WAIT, "TensorBoard to list both jobs' runs", interval=0.5)
        assert "epoch_loss" in tags[f"{first}/train"] and "epoch_loss" in tags[f"{second}/validation"]
        for job_id, epochs in ((first, 3), (second, 4)):
            curves = http.get(f"/v1/jobs/{job_id}/curves").json()
            for run, column in (("train", "loss"), ("validation", "val_loss")):
                points = scalars(board, f"{job_id}/{run}", "epoch_loss")
                assert [step for step, _ in points] == curves["epoch"] == list(range(1, epochs + 1))
                assert [v for _, v in points] == pytest.approx(curves[column], rel=1e-5), (job_id, run)

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal: the CLI and TensorBoard get it
    assert process.wait(timeout=60) == 0
    wait_until(lambda: not listening(port), 30, "TensorBoard to stop listening")
