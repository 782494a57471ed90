import numpy as np
import pytest

from api.errors import PayloadTooLarge
from api.limits import check_tenant_limits
from models.settings import Settings
from models.spec import DataSpec, JobSpec
from tests.specs import IRIS_MLP
from worker.data import DataError, prepare


def arrays(n=100):
    x = np.arange(n * 2, dtype="float32").reshape(n, 2) * np.array([1, 100], dtype="float32")
    y = np.repeat([0, 1], n // 2)  # sorted labels: the story-5 trap for an unshuffled split
    return {"x": x, "y": y}


def test_unshuffled_split_takes_the_last_fractions_like_keras():
    data = prepare(arrays(), DataSpec(shuffle=False, validation_split=0.2, test_split=0.1), seed=0)
    assert len(data.train.x) == 70 and len(data.validation.x) == 20 and len(data.test.x) == 10
    assert data.summary["splits"]["validation"]["label_counts"] == {"1": 20}


def test_shuffled_split_is_representative_and_reproducible():
    spec = DataSpec(shuffle=True, validation_split=0.2)
    first, again = prepare(arrays(), spec, seed=3), prepare(arrays(), spec, seed=3)
    counts = first.summary["splits"]["validation"]["label_counts"]
    assert set(counts) == {"0", "1"} and min(counts.values()) >= 5
    np.testing.assert_array_equal(first.validation.x, again.validation.x)
    assert not np.array_equal(prepare(arrays(), spec, seed=4).validation.x, first.validation.x)


@pytest.mark.parametrize("method", ["standardize", "minmax", "rescale"])
def test_scaling_statistics_come_from_the_training_part_only(method):
    data = prepare(arrays(), DataSpec(shuffle=False, validation_split=0.3, scale_x=method), seed=0)
    train = np.asarray(data.train.x)
    if method == "standardize":
        np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-5)
    elif method == "minmax":
        np.testing.assert_allclose(train.min(axis=0), 0)
        np.testing.assert_allclose(train.max(axis=0), 1)
    else:
        assert np.abs(train).max() == pytest.approx(1)
    # The validation part lies beyond the training range: it was not used to fit.
    assert np.asarray(data.validation.x).max() > 1


def test_one_hot_and_bad_inputs():
    data = prepare(arrays(), DataSpec(one_hot=True, validation_split=0.0), seed=0)
    assert data.train.y.shape == (100, 2) and set(np.unique(data.train.y)) == {0.0, 1.0}
    with pytest.raises(DataError, match="no array named 'z'"):
        prepare(arrays(), DataSpec(x="z"), seed=0)
    with pytest.raises(DataError, match="x has 100 samples but y has 99"):
        prepare({"x": arrays()["x"], "y": np.zeros(99)}, DataSpec(), seed=0)


# Where rounding each part (the worker) and flooring the training fraction (the API before) differ: 30 x 0.15.
@pytest.mark.parametrize(("n", "validation_split", "test_split"), [(30, 0.15, 0.0), (18, 0.25, 0.0), (10, 0.45, 0.05),
                                                                  (1000, 0.2, 0.1)])
def test_the_api_limit_counts_the_training_samples_the_worker_trains_on(n, validation_split, test_split):
    data_spec = DataSpec(validation_split=validation_split, test_split=test_split)
    trained = len(prepare(arrays(n), data_spec, seed=0).train)
    assert data_spec.split_sizes(n)[0] == trained
    job = JobSpec.model_validate({**IRIS_MLP, "data": data_spec.model_dump(), "fit": {"epochs": 3, "batch_size": 8}})
    check_tenant_limits(None, job, n, Settings(max_epoch_samples=3 * trained), "t")  # type: ignore[arg-type]
    with pytest.raises(PayloadTooLarge, match=f"3 epochs x {trained} samples"):
        check_tenant_limits(None, job, n, Settings(max_epoch_samples=3 * trained - 1), "t")  # type: ignore[arg-type]
