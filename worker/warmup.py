"""TensorFlow is imported once per training process, in the background.

A prefork pool child must report UP to its parent within
``worker_proc_alive_timeout`` or be killed; on a loaded host the TensorFlow
import alone takes 20-30 s, so a child that imported it before reporting UP
was killed and replaced by one just as slow, forever. The child therefore
starts the import in a thread and reports UP at once; a task waits for the
thread before it imports Keras itself (two threads importing the same modules
at once can deadlock on the import locks).
"""

import logging
import threading
from typing import Any

from models.settings import get_settings

log = logging.getLogger(__name__)
_thread: threading.Thread | None = None


def _import_tensorflow() -> None:
    try:
        import tensorflow as tf

        share_gpus(tf, get_settings().gpu_slot_memory_mb)
        import keras_bridge.layers  # noqa: F401  (warm the Keras class catalog)

        log.info("TensorFlow %s ready, GPUs: %s", tf.__version__, tf.config.list_physical_devices("GPU"))
    except Exception:  # the task's own import raises it again, where it is reported
        log.exception("importing TensorFlow failed")


def share_gpus(tf: Any, memory_mb: int | None) -> None:
    """Before TensorFlow initialises the GPUs: each visible GPU becomes one logical device of
    ``memory_mb`` (this slot's share, cli/processes.py), or grows its memory as needed (None).
    A job that outgrows the share fails with ResourceExhaustedError (OutOfMemory) in its own
    process; the other slots on the GPU keep their memory."""
    for gpu in tf.config.list_physical_devices("GPU"):
        if memory_mb is None:
            tf.config.experimental.set_memory_growth(gpu, True)
        else:
            share = tf.config.LogicalDeviceConfiguration(memory_limit=memory_mb)
            tf.config.set_logical_device_configuration(gpu, [share])


def start() -> None:
    """Begin importing TensorFlow in this process, without waiting for it."""
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_import_tensorflow, name="trainyard-tf-import", daemon=True)
        _thread.start()


def wait() -> None:
    """Block until the background import (if one was started) is over."""
    if _thread is not None:
        _thread.join()
