"""Which worker processes a host runs: one per GPU, or one for the CPU."""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.tasks import CONTROL_QUEUE, GPU_QUEUE, training_queues


@dataclass(frozen=True)
class WorkerProcess:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The Celery node name it runs as (``-n``), for logs."""
        return self.argv[self.argv.index("-n") + 1] if "-n" in self.argv else self.argv[-1]


def count_gpus() -> int:
    """GPUs visible on this host, asked of nvidia-smi so the parent never imports TensorFlow."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def celery_worker_argv(queues: list[str], name: str, *, beat: bool = False, pool: str = "prefork",
                       concurrency: int = 1) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", ",".join(queues),
            "-c", str(concurrency), "--pool", pool, "-n", f"{name}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle"]
    if beat:
        argv.append("--beat")
    return argv


def training_workers(gpus: int, cpu_queue: str, extra_queues: list[str] | None = None) -> list[WorkerProcess]:
    """One process per GPU, each seeing only its GPU and consuming the ``gpu`` queue;
    on a host without GPUs, one process on ``cpu_queue``."""
    extra = extra_queues or []
    if gpus == 0:
        return [WorkerProcess(celery_worker_argv([*training_queues(cpu_queue), *extra], "cpu"),
                              {"CUDA_VISIBLE_DEVICES": ""})]
    return [
        WorkerProcess(celery_worker_argv([*training_queues(GPU_QUEUE), *extra], f"gpu{i}"),
                      {"CUDA_VISIBLE_DEVICES": str(i)})
        for i in range(gpus)
    ]


# Set for worker processes that never train: they skip the TensorFlow import.
NO_TENSORFLOW = "TRAINYARD_WORKER_NO_TENSORFLOW"


def control_worker() -> WorkerProcess:
    """Beat plus the control queue (the reconciler): no TensorFlow, so a solo pool."""
    return WorkerProcess(celery_worker_argv([CONTROL_QUEUE], "control", beat=True, pool="solo"),
                         {NO_TENSORFLOW: "1", "CUDA_VISIBLE_DEVICES": ""})


def webhook_worker(queue: str) -> WorkerProcess:
    """Webhook deliveries: network waits only, so a thread pool (which, unlike prefork
    and solo, never runs the TensorFlow import), several at a time so that one slow
    receiver does not hold up the deliveries of other jobs."""
    return WorkerProcess(celery_worker_argv([queue], "webhooks", pool="threads", concurrency=4))


def control_plane(webhook_queue: str) -> list[WorkerProcess]:
    """What `trainyard worker --control` runs: the reconciler and the webhook deliveries."""
    return [control_worker(), webhook_worker(webhook_queue)]


PR_SET_PDEATHSIG = 1


def _term_when_parent_dies(parent: int) -> Callable[[], None]:
    # Linux: the kernel sends SIGTERM (a warm shutdown) to the worker when the thread that
    # started it dies, even by SIGKILL, so a dead `trainyard serve` or supervisor leaves no
    # orphan behind. Runs in the child between fork and exec.
    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def spawn(process: WorkerProcess) -> subprocess.Popen[bytes]:
    """Start a worker in a process group of its own: a Ctrl-C or a group SIGTERM meant for
    the parent must not reach the worker's pool children directly (its parent would
    replace them mid-shutdown); the parent stops it with SIGTERM, a warm shutdown, and so
    does the kernel if the parent dies first."""
    arm = _term_when_parent_dies(os.getpid()) if sys.platform.startswith("linux") else None
    return subprocess.Popen(process.argv, env={**os.environ, **process.env}, start_new_session=True,
                            preexec_fn=arm)  # noqa: PLW1509  (only prctl and getppid, see above)
