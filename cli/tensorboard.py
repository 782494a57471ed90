"""``trainyard tensorboard <job ids…>``: download the jobs' TensorBoard files and run TensorBoard over them.

Each job's archive (``GET /v1/jobs/{id}/tensorboard``) is unpacked into ``<logdir>/<job id>/``,
so TensorBoard shows one run per job (``<job id>/train``, ``<job id>/validation``) and
overlays their curves. TensorBoard itself is the ``tensorboard`` extra
(``pip install 'trainyard[tensorboard]'``); ``--download-only`` needs none.
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import httpx
from rich.console import Console

from cli.client import DEFAULT_URL, ClientError, api_message


def download(client: httpx.Client, job_id: str, logdir: Path) -> Path:
    """The job's event files under ``logdir/<job id>``; an older copy there is replaced."""
    response = client.get(f"/v1/jobs/{job_id}/tensorboard")
    if response.status_code >= 400:
        raise ClientError(f"{job_id}: {api_message(response)}")
    target = logdir / job_id
    shutil.rmtree(target, ignore_errors=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
            # "data": no absolute paths, no links out, no device files, whatever the archive holds.
            archive.extractall(logdir, filter="data")
    except tarfile.TarError as exc:
        raise ClientError(f"{job_id}: the TensorBoard archive could not be unpacked ({exc})") from exc
    return target


def tensorboard_command(logdir: Path, port: int) -> list[str] | None:
    """How to start TensorBoard here, or None when it is not installed."""
    found = shutil.which("tensorboard")
    if found is None:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return None
        return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port)]
    return [found, "--logdir", str(logdir), "--port", str(port)]


def tensorboard(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    logdir = Path(args.logdir) if args.logdir else Path(tempfile.mkdtemp(prefix="trainyard-tensorboard-"))
    logdir.mkdir(parents=True, exist_ok=True)
    for job_id in args.job_ids:
        console.print(f"{job_id}: {download(client, job_id, logdir)}")
    if args.download_only:
        return 0
    command = tensorboard_command(logdir, args.port)
    if command is None:
        raise ClientError(f"TensorBoard is not installed: pip install 'trainyard[tensorboard]', "
                          f"or run it yourself: tensorboard --logdir {logdir}")
    console.print(f"TensorBoard on http://127.0.0.1:{args.port}/ over {logdir} (Ctrl-C stops it)")
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    t = sub.add_parser("tensorboard", help="download jobs' TensorBoard files and run TensorBoard over them")
    t.add_argument("job_ids", nargs="+", metavar="job_id")
    t.add_argument("--logdir", help="where to unpack them (default: a new temporary folder)")
    t.add_argument("--port", type=int, default=6006)
    t.add_argument("--download-only", action="store_true", help="unpack the files, do not start TensorBoard")
    t.add_argument("--url", default=os.environ.get("TRAINYARD_URL", DEFAULT_URL), help="the API")
    t.add_argument("--api-key", help="default: $TRAINYARD_API_KEY, else the key in <data dir>/api-key")
    t.set_defaults(client_command=tensorboard)

