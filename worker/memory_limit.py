"""The memory one training process may take, enforced by the kernel on CPU hosts.

A job's batch memory is estimated from shapes and checked against
``worker_memory_bytes`` before training (keras_bridge/budget.py), but an estimate
can be low (sequences of unknown length count as one step). Past it, the kernel's
out-of-memory killer would SIGKILL the process: the job would be retried, killed
again and end as ``WorkerLost``, and the host's other processes would be at risk.
With ``RLIMIT_DATA`` set, an allocation past the limit fails inside the process
instead (numpy's ``MemoryError``, TensorFlow's ``ResourceExhaustedError``), and the
job fails as ``OutOfMemory`` with the estimate (worker/training.py).

On a GPU host the batch lives in device memory, where TensorFlow raises its own
``ResourceExhaustedError``; the CUDA driver maps large host areas, so no limit is
set there.
"""

import os
import resource

from models.settings import Settings


def training_memory_limit(settings: Settings) -> int | None:
    """The limit in bytes for a training process of this host, or None (a GPU host)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "") != "":
        return None
    return settings.worker_memory_bytes + settings.worker_runtime_bytes


def limit_training_memory(settings: Settings) -> int | None:
    """Apply ``training_memory_limit`` to this process (a training pool child); returns it."""
    limit = training_memory_limit(settings)
    if limit is not None:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return limit
