"""Built-in datasets: scikit-learn's bundled files, so nothing is downloaded."""

from collections.abc import Callable

import numpy as np

BUILTIN_PREFIX = "builtin:"


def _digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 8x8 grey images with values 0..16, one channel, as a CNN expects them.
    return {"x": bunch.images[..., None].astype("float32"), "y": bunch.target.astype("int64")}


def _tabular(loader_name: str) -> Callable[[], dict[str, np.ndarray]]:
    def load() -> dict[str, np.ndarray]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)()
        y = bunch.target
        y = y.astype("int64") if np.issubdtype(y.dtype, np.integer) else y.astype("float32")
        return {"x": bunch.data.astype("float32"), "y": y}

    return load


BUILTINS: dict[str, tuple[str, Callable[[], dict[str, np.ndarray]]]] = {
    "digits": ("8x8 handwritten digits, 10 classes (x: images 0-16, y: labels)", _digits),
    "breast_cancer": ("Wisconsin breast cancer, 30 features, 2 classes", _tabular("load_breast_cancer")),
    "diabetes": ("diabetes progression regression, 10 features, 1 target", _tabular("load_diabetes")),
    "iris": ("iris flowers, 4 features, 3 classes", _tabular("load_iris")),
    "wine": ("wine cultivars, 13 features, 3 classes", _tabular("load_wine")),
}


def is_builtin(ref: str) -> bool:
    return ref.startswith(BUILTIN_PREFIX)


def builtin_names() -> list[str]:
    return [BUILTIN_PREFIX + name for name in BUILTINS]


def load_builtin(ref: str) -> dict[str, np.ndarray]:
    name = ref.removeprefix(BUILTIN_PREFIX)
    if name not in BUILTINS:
        raise KeyError(ref)
    return BUILTINS[name][1]()


def describe_builtin(ref: str) -> str:
    return BUILTINS[ref.removeprefix(BUILTIN_PREFIX)][0]
