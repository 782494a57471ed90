"""The devices one job trains on: this process's default device, or N under MirroredStrategy.

A job with ``resources.gpus`` N > 1 is trained by ``tf.distribute.MirroredStrategy`` over N GPUs
of its worker (the ``gpus`` process of a multi-GPU host, cli/processes.py): its model is built
and compiled inside ``strategy.scope()``, each batch of ``fit.batch_size`` samples (the global
batch, as with ``model.fit(batch_size=...)`` under a strategy) is split across the devices and
the gradients are summed over them, so the curves match a single-device run up to float sums.
"""

import tensorflow as tf


class NotEnoughDevices(Exception):
    """The job asks for more devices than this worker sees (a routing or configuration error)."""


def job_strategy(gpus: int) -> tf.distribute.Strategy:
    """The default strategy (one device) for ``gpus`` <= 1, else MirroredStrategy over ``gpus`` devices.

    The devices are this process's first ``gpus`` GPUs; on a host without any GPU, its logical CPU
    devices when the CPU was split into that many (``tf.config.set_logical_device_configuration``),
    which is how the strategy is tested on machines without GPUs.
    """
    if gpus <= 1:
        return tf.distribute.get_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if len(devices) < gpus:
        raise NotEnoughDevices(f"resources.gpus={gpus} but this worker sees {len(devices)} device(s): "
                               f"{[d.name for d in devices]}")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices[:gpus]])


def devices_of(strategy: tf.distribute.Strategy) -> list[str]:
    """The device names a job trains on, for its record."""
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return list(strategy.extended.worker_devices)
    gpus = tf.config.list_logical_devices("GPU")
    return [gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name]
