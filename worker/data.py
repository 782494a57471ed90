"""Turn a stored dataset and the spec's ``data`` options into train/validation/test splits.

Order of operations matters for honesty: shuffle with the job's seed, split,
then fit scaling statistics on the training part only. A split is a list of
sample indices into the stored data, never a copy of it: the data stay on
disk and are read a batch at a time (``worker.pipeline``), so a dataset
larger than memory trains, and the same seed always gives the same samples.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datastore.describe import RunningStats, label_counts
from datastore.kinds import ArrayKind
from datastore.reader import ArrayLike, StoredDataset, select
from datastore.rows import chunks, row_bytes, take
from datastore.splits import indices_digest, split_parts
from models.spec import DataSpec, Scaling
from worker.sources import Source


class DataError(ValueError):
    """The data cannot be used with this spec; the message is for the user."""


@dataclass(frozen=True)
class Scaler:
    shift: np.ndarray
    scale: np.ndarray

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return ((values.astype(np.float32) - self.shift) / self.scale).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Scaled values (a regressor's predictions of a scaled y) back in the data's units."""
        return (values.astype(np.float32) * self.scale + self.shift).astype(np.float32)


def save_scalers(data: "PreparedData", path: Path) -> None:
    """The statistics ``data.scale_x`` and ``data.scale_y`` were fitted with, kept with the job:
    predictions on new rows (keras_bridge/predict.py) scale x and unscale y exactly as training did."""
    arrays = {f"{role}_{part}": getattr(scaler, part) for role, scaler in (("x", data.x_scaler), ("y", data.y_scaler))
              if scaler is not None for part in ("shift", "scale")}
    if not arrays:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        np.savez(out, **arrays)


def load_scalers(path: Path) -> tuple[Scaler | None, Scaler | None]:
    """(x's scaler, y's scaler), as ``save_scalers`` kept them."""
    if not path.exists():
        return None, None
    with np.load(path) as saved:
        return tuple(Scaler(saved[f"{role}_shift"], saved[f"{role}_scale"]) if f"{role}_shift" in saved else None
                     for role in ("x", "y"))  # type: ignore[return-value]


class Rows:
    """A split's x or y as a read-only array: ``len``, ``shape``, indexing and ``np.asarray`` read from disk."""

    def __init__(self, indices: np.ndarray, fetch: Callable[[np.ndarray], np.ndarray], sample_shape: tuple) -> None:
        self.indices, self._fetch, self.sample_shape = indices, fetch, sample_shape

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple:
        return (len(self.indices), *self.sample_shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        picked = self.indices[key]
        return self._fetch(np.atleast_1d(picked))[0] if np.ndim(picked) == 0 else self._fetch(picked)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._fetch(self.indices), dtype=dtype)


@dataclass
class Split:
    indices: np.ndarray
    x: Rows = field(repr=False)
    y: Rows = field(repr=False)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class PreparedData:
    x: Source
    y: Source
    train: Split
    validation: Split | None
    test: Split | None
    x_scaler: Scaler | None = None
    y_scaler: Scaler | None = None
    depth: int | None = None  # one_hot: number of classes
    summary: dict[str, Any] = field(default_factory=dict)

    def x_batch(self, indices: np.ndarray) -> np.ndarray:
        return self.x.fetch(indices, self.x_scaler).astype(np.float32, copy=False)

    def y_batch(self, indices: np.ndarray) -> np.ndarray:
        y = self.y.fetch(indices)
        if self.depth is not None:
            return np.eye(self.depth, dtype=np.float32)[y.astype(np.int64).reshape(-1)]
        if self.y_scaler is not None:
            return self.y_scaler(y)
        return y.astype(np.int64 if y.dtype.kind in "biu" else np.float32, copy=False)


def _source(arrays: Mapping[str, ArrayLike], role: str, spec: DataSpec) -> Source:
    names = getattr(spec, role)
    try:
        array = select(arrays, names)
    except KeyError as exc:
        raise DataError(f"data.{role}: no array named {exc}; the dataset has {sorted(arrays)[:20]}") from exc
    source = Source(array, image_size=(spec.image_size[0], spec.image_size[1]), channels=spec.channels)
    if role == "y" and source.kind != ArrayKind.dense:
        raise DataError(f"data.y: '{names}' holds {source.kind}; a target must be a plain array")
    return source


def _fit_scaler(source: Source, indices: np.ndarray, method: Scaling) -> Scaler:
    """Per-feature (last axis) statistics of the training part, read a chunk at a time."""
    stats = RunningStats(source.features)
    for block in source.values(indices):
        stats.update(block)
    if method == "standardize":
        shift, scale = stats.mean, stats.std
    elif method == "minmax":
        shift, scale = stats.min, stats.max - stats.min
    else:
        shift, scale = np.zeros(1), np.array([np.abs(np.concatenate([stats.min, stats.max])).max()])
    scale = np.where(np.isfinite(scale) & (scale != 0), scale, 1.0)
    return Scaler(shift.astype(np.float32), scale.astype(np.float32))


def _depth(y: Source) -> int:
    """one_hot: the number of classes, from the largest label over all of y."""
    largest = -1
    for piece in chunks(np.arange(len(y), dtype=np.int64), row_bytes(y.array)):
        block = take(y.array, piece)
        if block.dtype.kind == "f" and not np.all(np.mod(block, 1) == 0):
            raise DataError("data.one_hot: y must hold integer class labels")
        if block.size and block.min() < 0:
            raise DataError("data.one_hot: class labels must not be negative")
        largest = max(largest, int(block.max()) if block.size else -1)
    return largest + 1


def sources(arrays: Mapping[str, ArrayLike], spec: DataSpec) -> tuple[Source, Source]:
    """x and y as ``spec`` names them, of equal length (else DataError): raw values, read on demand."""
    x, y = _source(arrays, "x", spec), _source(arrays, "y", spec)
    if len(x) != len(y):
        raise DataError(f"data: x has {len(x)} samples but y has {len(y)}")
    return x, y


def prepare(arrays: Mapping[str, ArrayLike], spec: DataSpec, seed: int, *, fold: int | None = None,
            labels: np.ndarray | None = None) -> PreparedData:
    """The job's parts of the data.

    Args:
        fold: with ``spec.folds``, the fold (0-based) this job trains: its held-out part is the validation part.
        labels: with ``spec.folds``, the class label of each stored sample to stratify the folds by
            (``diagnosis.facts.DataFacts.fold_labels``), or None for plain K-fold.
    """
    x, y = sources(arrays, spec)
    n = len(x)
    try:
        parts = split_parts(n, spec, seed, fold=fold, labels=labels)
    except ValueError as exc:
        raise DataError(str(exc)) from exc

    data = PreparedData(x, y, train=None, validation=None, test=None)  # type: ignore[arg-type]
    if spec.one_hot:
        data.depth = _depth(y)
    if spec.scale_x is not None:
        data.x_scaler = _fit_scaler(x, parts["train"], spec.scale_x)
    if spec.scale_y is not None and data.depth is None:
        data.y_scaler = _fit_scaler(y, parts["train"], spec.scale_y)
    y_shape = (data.depth,) if data.depth is not None else y.sample_shape
    for name, indices in parts.items():
        setattr(data, name, Split(indices, Rows(indices, data.x_batch, x.sample_shape),
                                  Rows(indices, data.y_batch, y_shape)))

    classes = arrays.classes_of(spec.y) if isinstance(arrays, StoredDataset) else None
    data.summary = {
        "samples": n,
        "seed": seed,
        "shuffled": spec.shuffle,
        "splits": {name: {"samples": len(indices), "label_counts": label_counts(y.array, indices)}
                   for name, indices in parts.items()},
        "classes": classes,
    }
    if spec.folds is not None:
        assert fold is not None
        data.summary["fold"] = {"index": fold, "folds": spec.folds, "stratified": labels is not None,
                                "held_out_sha256": indices_digest(parts["validation"])}
    return data

