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

log = logging.getLogger(__name__)
_thread: threading.Thread | None = None


def _import_tensorflow() -> None:
    try:
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
        import keras_bridge.layers  # noqa: F401  (warm the Keras class catalog)

        log.info("TensorFlow %s ready, GPUs: %s", tf.__version__, tf.config.list_physical_devices("GPU"))
    except Exception:  # the task's own import raises it again, where it is reported
        log.exception("importing TensorFlow failed")


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
