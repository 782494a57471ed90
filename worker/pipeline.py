"""``tf.data`` pipelines that feed ``model.fit`` from the stored data, a batch at a time.

Sample indices are shuffled (the whole index, seeded: a perfect shuffle that
costs 8 bytes per sample, redone each epoch), batched, then read: dense rows
and sequences by a NumPy function that reads just those rows from disk
(``preadv``, see ``datastore.rows``), images by TensorFlow's decoders in
parallel. ``prefetch`` overlaps reading the next batch with training on this
one. Resident memory stays at a few batches whatever the dataset's size.
"""

import numpy as np
import tensorflow as tf

from datastore.kinds import ArrayKind
from worker.data import PreparedData, Split
from worker.image_decode import decode_image

AUTOTUNE = tf.data.AUTOTUNE
# Dense data up to this size is read once, scaled, and kept in memory: batches are then
# gathered by TensorFlow, with no Python call per batch. Larger data streams from disk.
IN_MEMORY_BYTES = 512 * 1024**2


def make_dataset(data: PreparedData, split: Split, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    """``(x, y)`` batches of ``split``; shuffled each epoch when ``shuffle``."""
    indices = tf.data.Dataset.from_tensor_slices(split.indices.astype(np.int64))
    if shuffle:
        indices = indices.shuffle(len(split.indices), seed=seed, reshuffle_each_iteration=True)
    probe_y = data.y_batch(split.indices[:1])
    y_dtype = tf.as_dtype(probe_y.dtype)
    if data.x.kind == ArrayKind.images:
        files = tf.constant([str(f) for f in data.x.array.files])  # type: ignore[union-attr]
        targets = tf.constant(data.y_batch(np.arange(len(data.y))))
        shift, scale = ((data.x_scaler.shift, data.x_scaler.scale) if data.x_scaler is not None
                        else (np.zeros(1, np.float32), np.ones(1, np.float32)))

        def load(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image = decode_image(tf.gather(files, i), data.x.image_size, data.x.channels)
            return (image - shift) / scale, tf.gather(targets, i)

        batches = indices.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size)
    elif data.x.kind == ArrayKind.dense and _dense_bytes(data) <= IN_MEMORY_BYTES:
        every = np.arange(len(data.y))
        xs, ys = tf.constant(data.x_batch(every)), tf.constant(data.y_batch(every))  # the same values, read once
        if not shuffle and len(split.indices) <= batch_size:
            # One batch in a fixed order (a validation split within one forward batch): stored whole,
            # so each epoch's pass makes no index batch, gather or prefetch thread (~10 ms an epoch).
            return tf.data.Dataset.from_tensors((tf.gather(xs, split.indices), tf.gather(ys, split.indices)))

        def gather(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.gather(xs, i), tf.gather(ys, i)

        batches = indices.batch(batch_size).map(gather, num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        def read(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return data.x_batch(i), data.y_batch(i)

        def fetch(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x, y = tf.numpy_function(read, [i], [tf.float32, y_dtype], stateful=False)
            x.set_shape((None, *data.x.sample_shape))
            y.set_shape((None, *probe_y.shape[1:]))
            return x, y

        batches = indices.batch(batch_size).map(fetch, num_parallel_calls=AUTOTUNE, deterministic=True)
    return batches.prefetch(AUTOTUNE)


def _dense_bytes(data: PreparedData) -> int:
    return len(data.y) * int(np.prod(data.x.sample_shape)) * 4  # float32 once scaled
