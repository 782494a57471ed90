"""``trainyard tensorboard``: jobs' archives unpacked side by side, TensorBoard started over them."""

import argparse
import io
import tarfile

import httpx
import pytest
from rich.console import Console

from cli import main as cli_main
from cli import tensorboard as command
from cli.client import ClientError


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ARCHIVES = {
    "job_a": archive({"job_a/train/events.out.tfevents.1.v2": b"a-train", "job_a/validation/e.v2": b"a-val"}),
    "job_b": archive({"job_b/train/events.out.tfevents.2.v2": b"b-train"}),
    "job_evil": archive({"../outside.v2": b"x"}),
}


def api(request: httpx.Request) -> httpx.Response:
    job_id = request.url.path.split("/")[3]
    if job_id not in ARCHIVES or request.headers.get("authorization") != "Bearer key":
        return httpx.Response(404, json={"error": {"code": "not_found", "message": f"no job '{job_id}'",
                                                   "details": []}})
    return httpx.Response(200, content=ARCHIVES[job_id], headers={"content-type": "application/gzip"})


def run(tmp_path, *job_ids: str, download_only: bool = True) -> int:
    args = argparse.Namespace(job_ids=list(job_ids), logdir=str(tmp_path / "logs"), port=6111,
                              download_only=download_only)
    with httpx.Client(base_url="http://api", transport=httpx.MockTransport(api),
                      headers={"Authorization": "Bearer key"}) as client:
        return command.tensorboard(client, args, Console(file=io.StringIO()))


def test_each_job_is_one_run_folder(tmp_path):
    assert run(tmp_path, "job_a", "job_b") == 0
    logs = tmp_path / "logs"
    assert (logs / "job_a/train/events.out.tfevents.1.v2").read_bytes() == b"a-train"
    assert (logs / "job_a/validation/e.v2").read_bytes() == b"a-val"
    assert (logs / "job_b/train/events.out.tfevents.2.v2").read_bytes() == b"b-train"


def test_unknown_jobs_and_hostile_archives_are_clear_errors(tmp_path):
    with pytest.raises(ClientError, match="job_nope: no job 'job_nope'"):
        run(tmp_path, "job_a", "job_nope")
    with pytest.raises(ClientError, match="could not be unpacked"):
        run(tmp_path, "job_evil")
    assert not (tmp_path / "outside.v2").exists()


def test_tensorboard_runs_over_the_folder_or_says_how_to_install_it(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(command.subprocess, "call", lambda argv: started.append(argv) or 0)
    monkeypatch.setattr(command, "tensorboard_command", lambda logdir, port: None)
    with pytest.raises(ClientError, match=r"pip install 'trainyard\[tensorboard\]'"):
        run(tmp_path, "job_a", download_only=False)
    monkeypatch.undo()
    monkeypatch.setattr(command.subprocess, "call", lambda argv: started.append(argv) or 0)
    monkeypatch.setattr(command.shutil, "which", lambda name: f"/opt/bin/{name}")
    assert run(tmp_path, "job_a", "job_b", download_only=False) == 0
    assert started == [["/opt/bin/tensorboard", "--logdir", str(tmp_path / "logs"), "--port", "6111"]]


def test_the_subcommand_exists(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["tensorboard", "--help"])
    assert exit_info.value.code == 0 and "--download-only" in capsys.readouterr().out
