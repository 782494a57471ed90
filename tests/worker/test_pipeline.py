"""The tf.data pipelines that feed model.fit from stored datasets."""

import keras
import numpy as np
import pytest

from datastore.ingest import ingest
from datastore.limits import Limits
from datastore.reader import open_directory
from models.spec import DataSpec
from tests.data_files import csv_bytes, image_png, image_zip, npz_bytes, sequences
from worker.data import prepare
from worker.image_decode import decode_image
from worker.pipeline import make_dataset


def stored(tmp_path, name: str, content: bytes):
    (tmp_path / name).write_bytes(content)
    ingest(tmp_path / name, "." + name.rsplit(".", 1)[1], tmp_path / "stored", Limits())
    return open_directory(tmp_path / "stored")


def epochs(dataset, count: int = 2) -> list[np.ndarray]:
    return [np.concatenate([x for x, _ in dataset.as_numpy_iterator()]) for _ in range(count)]


def test_dense_batches_are_the_stored_rows_scaled_and_reshuffled_each_epoch_reproducibly(tmp_path):
    x = np.random.default_rng(0).normal(3, 2, size=(200, 4)).astype("float32")
    arrays = stored(tmp_path, "d.npz", npz_bytes(x=x, y=np.arange(200) % 2))
    data = prepare(arrays, DataSpec(scale_x="standardize", validation_split=0.25), seed=4)

    first, second = epochs(make_dataset(data, data.train, 32, shuffle=True, seed=4))
    again = epochs(make_dataset(data, data.train, 32, shuffle=True, seed=4), 1)[0]

    assert first.shape == (150, 4) and not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again)  # the same seed, the same batches
    expected = (x[np.sort(data.train.indices)] - data.x_scaler.shift) / data.x_scaler.scale
    np.testing.assert_allclose(np.sort(first, axis=0), np.sort(expected, axis=0), rtol=1e-5)
    validation = epochs(make_dataset(data, data.validation, 32, shuffle=False, seed=4), 1)[0]
    np.testing.assert_allclose(validation, (x[data.validation.indices] - data.x_scaler.shift) / data.x_scaler.scale,
                               rtol=1e-5)


def test_sequences_are_padded_per_batch_and_masking_masks_only_the_padding(tmp_path):
    raw = sequences(n=40)
    arrays = stored(tmp_path, "s.npz", npz_bytes(**raw))
    data = prepare(arrays, DataSpec(scale_x="standardize", validation_split=0.0, shuffle=False), seed=0)

    x, y = next(make_dataset(data, data.train, 8, shuffle=False, seed=0).as_numpy_iterator())

    lengths = raw["x_lengths"][:8]
    assert x.shape == (8, lengths.max(), 7) and y.tolist() == raw["y"][:8].tolist()
    mask = keras.layers.Masking(mask_value=0.0).compute_mask(x)
    np.testing.assert_array_equal(np.asarray(mask).sum(axis=1), lengths)
    step_stats = np.concatenate([x[i, :n] for i, n in enumerate(lengths)])
    assert abs(step_stats.mean()) < 0.5  # real steps were scaled; the padding stayed 0.0
    assert np.all(x[np.argmin(lengths), lengths.min():] == 0.0)


def test_csv_columns_stack_as_features_and_text_targets_keep_their_class_names(tmp_path):
    arrays = stored(tmp_path, "t.csv", csv_bytes(n=50))
    data = prepare(arrays, DataSpec(x=["a", "b"], y="color", one_hot=True, validation_split=0.2), seed=1)

    x, y = next(make_dataset(data, data.train, 50, shuffle=False, seed=1).as_numpy_iterator())

    assert x.shape == (40, 2) and y.shape == (40, 3) and set(y.sum(axis=1)) == {1.0}
    np.testing.assert_allclose(x[:, 0], np.asarray(arrays["a"])[data.train.indices], rtol=1e-6)
    assert data.summary["classes"] == ["blue", "green", "red"]
    assert sum(data.summary["splits"]["validation"]["label_counts"].values()) == 10


@pytest.mark.parametrize(("mode", "channels"), [("grayscale", 1), ("rgb", 3), ("rgba", 4)])
def test_images_are_decoded_to_the_color_mode_and_resized(tmp_path, mode, channels):
    arrays = stored(tmp_path, "i.zip", image_zip(per_class=4, size=12))  # grayscale PNGs and JPEGs
    data = prepare(arrays, DataSpec(image_size=[6, 8], color_mode=mode, validation_split=0.0, shuffle=False), seed=0)

    x, y = next(make_dataset(data, data.train, 8, shuffle=False, seed=0).as_numpy_iterator())

    assert x.shape == (8, 6, 8, channels) and x.dtype == np.float32 and y.tolist() == [0] * 4 + [1] * 4
    assert 0 <= x.min() and x.max() <= 255
    if channels == 4:
        assert np.all(x[..., 3] == 255)  # JPEGs have no alpha: opaque
    assert np.asarray(data.train.x[:2]).shape == (2, 6, 8, channels)  # the same decoding outside tf.data


def test_a_jpeg_decodes_to_four_channels_with_an_opaque_alpha(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(image_png(np.full((5, 5, 3), 100, np.uint8), "JPEG"))
    image = decode_image(str(path), (5, 5), 4).numpy()
    assert image.shape == (5, 5, 4) and np.all(image[..., 3] == 255)


def test_small_dense_data_kept_in_memory_gives_the_same_batches_as_streaming_from_disk(tmp_path, monkeypatch):
    from worker import pipeline

    x = np.random.default_rng(1).normal(size=(120, 3)).astype("float32")
    arrays = stored(tmp_path, "m.npz", npz_bytes(x=x, y=np.arange(120) % 3))
    data = prepare(arrays, DataSpec(scale_x="minmax", validation_split=0.2), seed=9)

    in_memory = epochs(make_dataset(data, data.train, 16, shuffle=True, seed=9))
    monkeypatch.setattr(pipeline, "IN_MEMORY_BYTES", 0)  # force the streaming path
    streamed = epochs(make_dataset(data, data.train, 16, shuffle=True, seed=9))

    for a, b in zip(in_memory, streamed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_validation_split_within_one_forward_batch_is_one_stored_batch_with_the_streamed_values(
    tmp_path, monkeypatch
):
    from worker import pipeline

    x = np.random.default_rng(2).normal(size=(100, 3)).astype("float32")
    arrays = stored(tmp_path, "v.npz", npz_bytes(x=x, y=np.arange(100) % 2))
    data = prepare(arrays, DataSpec(scale_x="standardize", validation_split=0.3), seed=5)

    whole = list(make_dataset(data, data.validation, 64, shuffle=False, seed=5).as_numpy_iterator())
    assert [len(batch_x) for batch_x, _ in whole] == [30]
    monkeypatch.setattr(pipeline, "IN_MEMORY_BYTES", 0)  # streamed from disk, in batches of 8
    streamed = list(make_dataset(data, data.validation, 8, shuffle=False, seed=5).as_numpy_iterator())
    for part in (0, 1):  # x, then y
        np.testing.assert_array_equal(whole[0][part], np.concatenate([batch[part] for batch in streamed]))
