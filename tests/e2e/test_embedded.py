"""Embedded mode as `make run` starts it: SQLite, the SQLite broker, a local
artifact folder, and still a separate Celery worker process."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import keras
import pytest

from cli.sse import parse
from tests.receiver import Receiver
from tests.specs import DIGITS_CNN, IRIS_MLP, spec

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def embedded(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update({"TRAINYARD_DATA_DIR": str(tmp_path / "var"), "PORT": str(port), "CUDA_VISIBLE_DEVICES": "",
                "TRAINYARD_WEBHOOK_ALLOW_PRIVATE": "true"})
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "serve"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])
    key = (tmp_path / "var" / "api-key").read_text().strip()  # the first key `serve` made and printed
    assert key in (tmp_path / "serve.log").read_text()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        yield api, tmp_path / "var"
    os.killpg(process.pid, 15)
    process.wait(timeout=60)
    log.close()


def test_embedded_mode_trains_a_job_with_no_server_installed(embedded):
    api, data_dir = embedded
    assert httpx.get(api.base_url.join("/v1/jobs")).status_code == 401  # no key, no access
    receiver = Receiver()
    hook = {"url": receiver.url, "secret": "whsec-0123456789abcdef"}
    job_id = api.post("/v1/jobs", json=spec(DIGITS_CNN, fit={"epochs": 3}, webhook=hook)).json()["id"]
    with api.stream("GET", f"/v1/jobs/{job_id}/events", timeout=120) as response:  # live, through SQLite
        events = list(parse(response.iter_lines()))
    assert [e.json()["data"]["epoch"] for e in events if e.event == "job.epoch"] == [1, 2, 3]
    # `serve` runs the webhook deliveries too, beside the training worker.
    receiver.wait_for(lambda r: any(q.event["type"] == "job.succeeded" for q in r.delivered()))
    receiver.close()

    deadline = time.monotonic() + 240
    while (job := api.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.25)

    assert job["status"] == "succeeded", job
    assert api.get(f"/v1/jobs/{job_id}/curves").json()["epoch"] == [1, 2, 3]
    assert (data_dir / "trainyard.db").exists() and (data_dir / "broker.db").exists()
    model_file = data_dir / "downloaded.keras"
    model_file.write_bytes(api.get(f"/v1/jobs/{job_id}/model").content)
    assert keras.saving.load_model(model_file, safe_mode=True).output_shape == (None, 10)


def test_embedded_mode_builds_an_ensemble_on_sqlite(embedded, tmp_path):
    api, data_dir = embedded
    hidden, output = IRIS_MLP["model"]["layers"]
    wider = spec(IRIS_MLP, model={"input_shape": [4], "layers": [{**hidden, "units": 32}, output]})
    ids = [api.post("/v1/jobs", json=body).json()["id"] for body in (IRIS_MLP, wider)]

    def settled(path: str, key: str = "status") -> dict:
        deadline = time.monotonic() + 240
        while (body := api.get(path).json())[key] in ("queued", "running"):
            assert time.monotonic() < deadline, body
            time.sleep(0.25)
        return body

    assert all(settled(f"/v1/jobs/{job_id}")["status"] == "succeeded" for job_id in ids)
    created = api.post("/v1/ensembles", json={"jobs": ids})
    assert created.status_code == 202, created.text

    ensemble = settled(f"/v1/ensembles/{created.json()['id']}")

    assert ensemble["status"] == "succeeded", ensemble
    assert ensemble["evaluation"]["held_out"] == {"part": "validation", "samples": 30}  # one seed: iris's 20 %
    model_file = tmp_path / "ensemble.keras"
    model_file.write_bytes(api.get(f"/v1/ensembles/{ensemble['id']}/model").content)
    assert keras.saving.load_model(model_file, safe_mode=True).output_shape == (None, 3)
