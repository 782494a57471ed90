"""Which worker processes a host runs, and how many job slots each offers.

Every slot is a process of its own (a Celery prefork pool child), so one job's crash, abort or
out-of-memory kill touches no other job, and each keeps the recovery guarantees of a single
worker (its own heartbeat, claim, memory limit; hand-back on a warm shutdown).
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.tasks import CONTROL_QUEUE, slot_queues, training_queues
from models.settings import Settings


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


def gpu_memory_mb() -> int | None:
    """The memory of this host's smallest GPU in MiB (nvidia-smi), None when it cannot be read."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        return min(int(line) for line in out.split())
    except (subprocess.SubprocessError, OSError, ValueError):
        return None


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Slots:
    """How many jobs a host trains at once (``Settings``: cpu_slots, gpu_slots, gpu_slot_memory_mb).

    Args:
        cpu: jobs at once on a host without GPUs.
        gpu: jobs at once per GPU.
        gpu_memory_mb: one GPU's memory (nvidia-smi), None when unknown.
        slot_memory_mb: each GPU slot's memory share, None: memory growth (one slot per GPU).
    """

    cpu: int = 1
    gpu: int = 1
    gpu_memory_mb: int | None = None
    slot_memory_mb: int | None = None

    @classmethod
    def of_host(cls, settings: Settings, gpus: int, gpu_memory_mb: int | None = None) -> "Slots":
        per_slot = settings.worker_memory_bytes + settings.worker_runtime_bytes  # a slot's RLIMIT_DATA
        cpu = settings.cpu_slots or max(1, min(os.cpu_count() or 1, host_memory_bytes() // per_slot))
        share = settings.gpu_slot_memory_mb
        # Shares per GPU: its slots, plus the one process that trains multi-GPU jobs on a host with several.
        sharers = settings.gpu_slots + (1 if gpus >= 2 else 0)
        if share is None and sharers > 1 and gpu_memory_mb is not None:
            share = int(gpu_memory_mb * 0.95) // sharers  # 5 % left to the CUDA context of each process
        return cls(cpu=cpu, gpu=settings.gpu_slots, gpu_memory_mb=gpu_memory_mb, slot_memory_mb=share)

    @property
    def offered_mb(self) -> int | None:
        """What one GPU slot offers a job, per device."""
        return self.slot_memory_mb or self.gpu_memory_mb


def celery_worker_argv(queues: list[str], name: str, *, beat: bool = False, pool: str = "prefork",
                       concurrency: int = 1) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", ",".join(queues),
            "-c", str(concurrency), "--pool", pool, "-n", f"{name}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle"]
    if beat:
        argv.append("--beat")
    return argv


def training_workers(gpus: int, cpu_queue: str, extra_queues: list[str] | None = None,
                     slots: Slots | None = None) -> list[WorkerProcess]:
    """On a host without GPUs, one Celery worker on ``cpu_queue`` with ``slots.cpu`` pool children.
    Their TensorFlow thread pools are left at the default (all cores): capped at a core's share
    each (TF_NUM_INTRAOP_THREADS=1 on 2 cores), a story-3 convolution epoch took 17x longer.
    With GPUs, one Celery worker per GPU, seeing only that GPU, with ``slots.gpu`` pool children
    that each take a memory share (``TRAINYARD_GPU_SLOT_MEMORY_MB``, set before TensorFlow
    initialises the GPU, worker/warmup.py); it consumes the ``gpu`` queues its share fits
    (``broker.tasks.slot_queues``). A host with several GPUs adds one process that sees them all
    and trains the jobs that ask for more than one (``gpu.x<N>``, MirroredStrategy)."""
    extra = extra_queues or []
    slots = slots or Slots()
    if gpus == 0:
        return [WorkerProcess(celery_worker_argv([*training_queues(cpu_queue), *extra], "cpu", concurrency=slots.cpu),
                              {"CUDA_VISIBLE_DEVICES": ""})]
    share = {} if slots.slot_memory_mb is None else {"TRAINYARD_GPU_SLOT_MEMORY_MB": str(slots.slot_memory_mb)}
    plan = [
        WorkerProcess(celery_worker_argv([*training_queues(*slot_queues(1, slots.offered_mb)), *extra], f"gpu{i}",
                                         concurrency=slots.gpu),
                      {"CUDA_VISIBLE_DEVICES": str(i), **share})
        for i in range(gpus)
    ]
    if gpus >= 2:
        multi = [q for n in range(gpus, 1, -1) for q in slot_queues(n, slots.offered_mb)]
        plan.append(WorkerProcess(celery_worker_argv(training_queues(*multi), "gpus"),
                                  {"CUDA_VISIBLE_DEVICES": ",".join(map(str, range(gpus))), **share}))
    return plan


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
