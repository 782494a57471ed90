"""The pool the API checks specs with: Keras in child processes, never in the API."""

import os

from api.validation.pool import ProcessPool
from models.settings import Settings

# keras_bridge.validate is imported in the children only.
CHECK_SPEC = "keras_bridge.requests:handle"  # spec checks and predictions (a "kind")
RESET = "keras_bridge.requests:reset"
CHILD_ENV = {
    "CUDA_VISIBLE_DEVICES": "",  # a check builds on the CPU: never take GPU memory the workers need
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # oneDNN's allocator keeps freed memory: a child that once built a big model would
    # keep it until its memory limit retires it. The plain allocator gives it back.
    "TF_ENABLE_ONEDNN_OPTS": "0",
    # One thread each: a check needs no parallelism, and fewer threads (their stacks
    # count against the memory limit) make the limit mean the same on every host.
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}
# A child interprets hostile specs: it gets no credentials it does not need.
WITHHELD = ("TRAINYARD_DATABASE_URL", "TRAINYARD_BROKER_URL")


def spec_check_pool(settings: Settings) -> ProcessPool:
    """Not started: the app starts it at start-up."""
    return ProcessPool(
        CHECK_SPEC, reset=RESET, env=child_env(), processes=settings.validator_processes,
        per_tenant=settings.validator_per_tenant, memory_bytes=settings.validator_memory_bytes,
        timeout_s=settings.validator_timeout_s, queue_wait_s=settings.validator_queue_wait_s,
    )


def child_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in WITHHELD}, **CHILD_ENV}
