"""``global_state.reset()`` undoes every process-wide Keras/TF setting (issue 8, item 3)."""

import keras
import pytest
import tensorflow as tf
from keras.src.backend.common import global_state as keras_global_state
from tensorflow.python.framework import config as tf_framework_config

from keras_bridge import global_state

# (what changes it, how to read it)
SETTERS = {
    "max_epochs": (lambda: keras.config.set_max_epochs(1), keras.config.max_epochs),
    "max_epochs_tensor": (lambda: keras.config.set_max_epochs(keras.ops.ones(())), keras.config.max_epochs),
    "max_steps_per_epoch": (lambda: keras.config.set_max_steps_per_epoch(1), keras.config.max_steps_per_epoch),
    "epsilon": (lambda: keras.config.set_epsilon(0.5), keras.config.epsilon),
    "floatx": (lambda: keras.config.set_floatx("float16"), keras.config.floatx),
    "image_data_format": (lambda: keras.config.set_image_data_format("channels_first"), keras.config.image_data_format),
    "dtype_policy": (lambda: keras.config.set_dtype_policy("mixed_float16"), lambda: keras.config.dtype_policy().name),
    "flash_attention": (keras.config.disable_flash_attention, keras.config.is_flash_attention_enabled),
    "traceback_filtering": (keras.config.disable_traceback_filtering, keras.config.is_traceback_filtering_enabled),
    "interactive_logging": (keras.config.disable_interactive_logging, keras.config.is_interactive_logging_enabled),
    "unsafe_deserialization": (keras.config.enable_unsafe_deserialization,
                               lambda: keras_global_state.get_global_attribute("safe_mode_saving")),
    "run_functions_eagerly": (lambda: tf.config.run_functions_eagerly(True), tf.config.functions_run_eagerly),
    "op_determinism": (tf_framework_config.enable_op_determinism, tf_framework_config.is_op_determinism_enabled),
    "jit": (lambda: tf.config.optimizer.set_jit(True), tf.config.optimizer.get_jit),
}


@pytest.fixture(autouse=True)
def restored():
    yield
    global_state.reset()


@pytest.mark.parametrize("name", SETTERS)
def test_reset_undoes_each_setting(name):
    change, read = SETTERS[name]
    before = read()
    change()
    assert read() is not before and read() != before  # the setter really changed something
    global_state.reset()
    assert read() == before


@pytest.mark.parametrize("name", SETTERS)
def test_reset_without_clearing_the_session_undoes_it_too(name):
    change, read = SETTERS[name]
    before = read()
    change()
    global_state.reset(clear_session=False)
    assert read() == before


def test_a_model_builds_and_trains_after_a_poisoned_configuration_is_reset():
    keras.config.set_max_epochs(keras.ops.ones(()))
    keras.config.set_floatx("float16")
    global_state.reset()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(keras.ops.zeros((4, 2)), keras.ops.zeros((4, 1)), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and model.weights[0].dtype == "float32"
