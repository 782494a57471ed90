"""Data for the calibration runs: scikit-learn's bundled sets and generators, and numpy.

Nothing is downloaded. Each generator is deterministic in its seed and small
(a few hundred to two thousand samples) so that a run takes seconds on two cores.
"""

import numpy as np


def tabular(n: int = 1200, features: int = 20, classes: int = 2, weights: list[float] | None = None,
            seed: int = 0) -> dict[str, np.ndarray]:
    """A learnable classification table (make_classification), optionally imbalanced."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n, n_features=features, n_informative=min(8, features), n_redundant=2,
                               n_classes=classes, n_clusters_per_class=2, weights=weights, class_sep=1.2,
                               flip_y=0.02, random_state=seed)
    return {"x": x.astype("float32"), "y": y.astype("int64")}


def regression(n: int = 1000, features: int = 12, noise: float = 10.0, seed: int = 0) -> dict[str, np.ndarray]:
    """A regression table with a mildly non-linear target (make_regression plus a square term)."""
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n, n_features=features, n_informative=6, noise=noise, random_state=seed)
    y = y + 0.01 * y**2 / max(1.0, float(np.std(y)))
    return {"x": x.astype("float32"), "y": y.astype("float32")}


def multilabel(n: int = 1200, features: int = 20, labels: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Multi-hot targets (make_multilabel_classification): sigmoid outputs with binary cross-entropy."""
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=n, n_features=features, n_classes=labels, n_labels=2,
                                          random_state=seed)
    return {"x": x.astype("float32"), "y": y.astype("float32")}


def waves(n: int = 900, steps: int = 64, classes: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed-length 1-D signals whose class is the frequency of a noisy oscillation (for Conv1D)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    t = np.arange(steps) / steps
    freq = 2.0 + 2.5 * y[:, None] + rng.normal(0, 0.3, (n, 1))
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1))) + rng.normal(0, 0.6, (n, steps))
    return {"x": x[..., None].astype("float32"), "y": y.astype("int64")}


def padded_sequences(n: int = 700, steps: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """Variable-length sequences of 2 features zero-padded at the end (for Masking + GRU/LSTM).

    The class is whether the first feature's running sum ends positive: it needs the
    whole sequence, and a model that reads the padding as data would be misled.
    """
    rng = np.random.default_rng(seed)
    x = np.zeros((n, steps, 2), dtype="float32")
    y = np.zeros(n, dtype="int64")
    for i in range(n):
        length = int(rng.integers(steps // 3, steps + 1))
        drift = rng.choice([-0.25, 0.25])
        values = rng.normal(drift, 1.0, length)
        x[i, :length, 0] = values
        x[i, :length, 1] = rng.normal(0, 1.0, length)
        y[i] = int(values.sum() > 0)
    return {"x": x, "y": y}


def shuffled_labels(arrays: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """The same inputs with their labels permuted: nothing left to learn (stuck at chance)."""
    return {"x": arrays["x"], "y": np.random.default_rng(seed).permutation(arrays["y"])}


def raw_scale(arrays: dict[str, np.ndarray], scale: float = 3000.0, offset: float = 1000.0) -> dict[str, np.ndarray]:
    """The same inputs in raw units in the thousands (no scaling applied before a sigmoid/softmax net)."""
    x = arrays["x"]
    return {"x": (x * scale + offset).astype("float32"), "y": arrays["y"]}


def half_linear(n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """A regression target that is a quarter linear, the rest a fast oscillation: a linear model
    levels off at about three quarters of the target variance, a small network fits it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 4))
    y = 0.5 * x[:, 0] + 1.5 * np.sin(3 * x[:, 1]) + rng.normal(0, 0.1, n)
    return {"x": x.astype("float32"), "y": y.astype("float32")}


def noisy_labels(arrays: dict[str, np.ndarray], share: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """The same data with a share of the class labels replaced by random ones: only memorising fits them."""
    rng = np.random.default_rng(seed)
    y = arrays["y"].copy()
    flip = rng.uniform(size=len(y)) < share
    y[flip] = rng.integers(0, int(y.max()) + 1, int(flip.sum()))
    return {"x": arrays["x"], "y": y}
