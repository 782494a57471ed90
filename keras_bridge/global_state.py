"""Keras/TensorFlow process-wide configuration, as it was when the process started.

A worker runs job after job in one process, and the API checks spec after spec:
whatever one of them changes in Keras's global configuration (``max_epochs``,
``epsilon``, ``floatx``, the dtype policy, eager mode, ...) would otherwise shape
every later job of every tenant. ``reset()`` puts it all back; the worker calls it
before each job and ``check_spec`` before each check.

The snapshot is taken when this module is first imported, which the worker and
the API do at start-up, before any spec is seen.
"""

from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend import config as keras_config
from keras.src.backend.common import global_state as keras_global_state
from tensorflow.python.framework import config as tf_framework_config

# Module globals of keras.src.backend.config behind keras.config's setters. They are
# restored by assignment: a setter may refuse a value, and set_max_epochs took a tensor.
_CONFIG_GLOBALS = ("_EPSILON", "_FLOATX", "_IMAGE_DATA_FORMAT", "_MAX_EPOCHS", "_MAX_STEPS_PER_EPOCH", "_NNX_ENABLED")
# Keras settings kept in its (thread-local) global state; clear_session() drops them.
_STATE_ATTRIBUTES = ("dtype_policy", "flash_attention", "traceback_filtering", "interactive_logging",
                     "safe_mode_saving")


@dataclass(frozen=True)
class Snapshot:
    config: dict[str, Any]
    state: dict[str, Any]
    run_functions_eagerly: bool
    op_determinism: bool
    jit: bool | str


def take() -> Snapshot:
    return Snapshot(
        config={name: getattr(keras_config, name) for name in _CONFIG_GLOBALS if hasattr(keras_config, name)},
        state={name: keras_global_state.get_global_attribute(name) for name in _STATE_ATTRIBUTES},
        run_functions_eagerly=tf.config.functions_run_eagerly(),
        op_determinism=tf_framework_config.is_op_determinism_enabled(),
        jit=tf.config.optimizer.get_jit(),
    )


AT_START = take()


def reset(*, clear_session: bool = True, snapshot: Snapshot = AT_START) -> None:
    """Restore the configuration of ``snapshot`` (the process start by default).

    Args:
        clear_session: also drop Keras's session (name counters, graphs, models). The
            worker's own checks pass False while its model trains in this process.
    """
    if clear_session:
        keras.backend.clear_session(free_memory=False)
    for name, value in snapshot.config.items():
        setattr(keras_config, name, value)
    for name, value in snapshot.state.items():
        keras_global_state.set_global_attribute(name, value)
    if tf.config.functions_run_eagerly() != snapshot.run_functions_eagerly:
        tf.config.run_functions_eagerly(snapshot.run_functions_eagerly)
    if tf_framework_config.is_op_determinism_enabled() != snapshot.op_determinism:
        if snapshot.op_determinism:
            tf_framework_config.enable_op_determinism()
        else:
            tf_framework_config.disable_op_determinism()
    if tf.config.optimizer.get_jit() != snapshot.jit:
        tf.config.optimizer.set_jit(snapshot.jit)

