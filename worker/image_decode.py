"""Decode one image file as Keras's ``image_dataset_from_directory`` does (TensorFlow).

Its own module: the batch readers (``worker.sources``, for NumPy batches) and the
``tf.data`` pipeline (``worker.pipeline``) both decode with it.
"""

import tensorflow as tf


def decode_image(path: str | tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """One image file as ``(height, width, channels)`` float32 in 0..255, as Keras's
    ``image_dataset_from_directory`` gives it (bilinear resize, no crop)."""
    data = tf.io.read_file(path)
    if channels == 4:  # a JPEG has no alpha channel: TensorFlow refuses to decode one to 4 channels
        def opaque() -> tf.Tensor:
            rgb = tf.io.decode_jpeg(data, channels=3)
            return tf.concat([rgb, tf.fill([tf.shape(rgb)[0], tf.shape(rgb)[1], 1], tf.constant(255, tf.uint8))], -1)

        image = tf.cond(tf.io.is_jpeg(data), opaque, lambda: tf.io.decode_png(data, channels=4))
    else:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return tf.image.resize(image, size, method="bilinear")
