"""What a dataset holds, computed once at upload: the ``description`` of a dataset.

The structure is a contract (the preflight checks read it; see README "Datasets")::

    {"version": 1,
     "samples": n | null,                      # null when the arrays differ in length
     "arrays": {name: {
         "shape": [n, ...], "dtype": "float32",  # null for a variable axis
         "kind": "dense" | "sequence" | "images",   # datastore.kinds.ArrayKind
         "stats": {"features": f, "rows": r, "sampled": bool, "nonfinite": k,
                   "min": [f], "max": [f], "mean": [f], "std": [f],   # per feature (last axis); null past 4096
                   "overall": {"min", "max", "mean", "std"}} | null,
         "label_counts": {"<label>": count} | null,   # integer or one-hot arrays with at most 1000 labels
         "lengths": {"min", "max", "mean", "p50", "p95"} | null,   # sequences: steps per sample
         ...kind-specific keys ("categories" of a CSV text column, "image_sizes" of images)}},
     "classes": [...] | null,                  # image folders: class names, index = label
     "columns": [...] | null}                  # CSV: the header, in order

Statistics read at most ``SAMPLE_ROWS`` evenly spaced rows (``sampled`` says so),
in chunks, so describing a dataset larger than memory stays cheap.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from datastore.labels import labels_of
from datastore.reader import ArrayLike, ImageFolder, SequenceArray, kind_of
from datastore.rows import chunks, row_bytes, take

VERSION = 1
SAMPLE_ROWS = 20_000
SAMPLE_BYTES = 64 * 1024 * 1024
MAX_LABELS = 1000
MAX_LISTED_FEATURES = 4096
MAX_ROW_BYTES = 1024 * 1024  # a sample (row) larger than this is read as rows of its last axis


class RunningStats:
    """Per-feature count, mean, spread (Chan et al.'s parallel update), min and max over finite values."""

    def __init__(self, features: int) -> None:
        self.count = np.zeros(features)
        self.mean = np.zeros(features)
        self.m2 = np.zeros(features)
        self.min = np.full(features, np.inf)
        self.max = np.full(features, -np.inf)
        self.nonfinite = 0

    def update(self, block: np.ndarray) -> None:
        values = block.reshape(-1, len(self.count)).astype(np.float64)
        finite = np.isfinite(values)
        self.nonfinite += int(values.size - finite.sum())
        count = finite.sum(axis=0).astype(np.float64)
        safe = np.where(finite, values, 0.0)
        mean = np.divide(safe.sum(axis=0), count, out=np.zeros_like(count), where=count > 0)
        m2 = (np.where(finite, values - mean, 0.0) ** 2).sum(axis=0)
        total = self.count + count
        delta = mean - self.mean
        ratio = np.divide(count, total, out=np.zeros_like(total), where=total > 0)
        self.mean = self.mean + delta * ratio
        self.m2 = self.m2 + m2 + delta**2 * self.count * ratio
        self.count = total
        self.min = np.minimum(self.min, np.where(finite, values, np.inf).min(axis=0, initial=np.inf))
        self.max = np.maximum(self.max, np.where(finite, values, -np.inf).max(axis=0, initial=-np.inf))

    def feature(self, j: int) -> "RunningStats":
        """The statistics of feature ``j`` alone (a CSV column)."""
        one = RunningStats(1)
        for name in ("count", "mean", "m2", "min", "max"):
            setattr(one, name, getattr(self, name)[j:j + 1].copy())
        return one

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.divide(self.m2, self.count, out=np.zeros_like(self.m2), where=self.count > 0))

    def as_json(self, rows: int, sampled: bool) -> dict[str, Any]:
        seen = self.count > 0
        count = float(self.count.sum())
        overall_mean = float((self.mean * self.count).sum() / count) if count else None
        overall_m2 = float((self.m2 + self.count * (self.mean - (overall_mean or 0.0)) ** 2).sum())
        listed = len(self.count) <= MAX_LISTED_FEATURES
        return {
            "features": len(self.count), "rows": rows, "sampled": sampled, "nonfinite": self.nonfinite,
            "min": _floats(self.min, seen) if listed else None,
            "max": _floats(self.max, seen) if listed else None,
            "mean": _floats(self.mean, seen) if listed else None,
            "std": _floats(self.std, seen) if listed else None,
            "overall": {
                "min": float(self.min[seen].min()) if seen.any() else None,
                "max": float(self.max[seen].max()) if seen.any() else None,
                "mean": overall_mean,
                "std": float(np.sqrt(overall_m2 / count)) if count else None,
            },
        }


def _floats(values: np.ndarray, seen: np.ndarray) -> list[float | None]:
    return [float(v) if s else None for v, s in zip(values.tolist(), seen.tolist(), strict=True)]


def sample_indices(n: int, bytes_per_row: int) -> np.ndarray:
    """Evenly spaced rows (all of them for small data), capped by count and bytes."""
    k = min(n, SAMPLE_ROWS, max(100, SAMPLE_BYTES // max(1, bytes_per_row)))
    return np.unique(np.linspace(0, n - 1, k).astype(np.int64)) if k < n else np.arange(n, dtype=np.int64)


def feature_stats(array: ArrayLike) -> dict[str, Any] | None:
    """Per-feature statistics of a dense array, a column stack or the steps of sequences."""
    if isinstance(array, ImageFolder) or array.dtype.kind not in "biuf":
        return None
    if isinstance(array, SequenceArray):
        array = array.values  # the statistics of sequences are those of their steps
    features = int(array.shape[-1]) if len(array.shape) > 1 and array.shape[-1] is not None else 1
    # Past MAX_LISTED_FEATURES only the overall figures are kept: gather them as one feature, so a
    # wide array costs five floats, not five per feature.
    width = features if features <= MAX_LISTED_FEATURES else 1
    if isinstance(array, np.ndarray) and (width != features or row_bytes(array) > MAX_ROW_BYTES):
        array = _as_rows(array, width)  # a huge sample (row) is sampled inside too
    stats = RunningStats(width)
    n = len(array)
    per_row = row_bytes(array)
    rows = sample_indices(n, per_row)
    for piece in chunks(rows, per_row):
        stats.update(take(array, piece))
    described = stats.as_json(rows=len(rows), sampled=len(rows) < n)
    if width != features:
        described.update(features=features, min=None, max=None, mean=None, std=None)
    return described


def _as_rows(array: np.ndarray, width: int) -> np.ndarray:
    """The same values as ``(-1, width)`` rows; a stored array stays a file-backed map of its file."""
    shape = (array.size // width, width)
    if isinstance(array, np.memmap) and array.filename and array.flags.c_contiguous:
        return np.memmap(array.filename, dtype=array.dtype, mode="r", shape=shape, offset=array.offset)
    return np.ascontiguousarray(array).reshape(shape)


def label_counts(array: ArrayLike, indices: np.ndarray | None = None) -> dict[str, int] | None:
    """How many rows carry each label, over all rows (or ``indices``); None for continuous or wide arrays."""
    if isinstance(array, (SequenceArray, ImageFolder)) or array.dtype.kind not in "biuf":
        return None
    shape = array.shape[1:]
    if not (len(shape) == 0 or shape == (1,) or (len(shape) == 1 and shape[0] <= MAX_LABELS)):
        return None
    rows = np.arange(len(array), dtype=np.int64) if indices is None else np.sort(indices)
    counts: dict[int, int] = {}
    for piece in chunks(rows, row_bytes(array)):
        labels = labels_of(take(array, piece))
        if labels is None:
            return None
        values, found = np.unique(labels, return_counts=True)
        for value, count in zip(values.tolist(), found.tolist(), strict=True):
            counts[value] = counts.get(value, 0) + count
        if len(counts) > MAX_LABELS:
            return None
    return {str(k): counts[k] for k in sorted(counts)}


def length_stats(lengths: np.ndarray) -> dict[str, float]:
    values = np.asarray(lengths, dtype=np.float64)
    return {"min": int(values.min()), "max": int(values.max()), "mean": float(values.mean()),
            "p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def describe_array(array: ArrayLike, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One array's entry; ``known`` supplies figures computed elsewhere (a CSV's exact column statistics,
    the pixel statistics of images), which are then not computed again."""
    known = known or {}
    entry = {
        "shape": [None if d is None else int(d) for d in array.shape],
        "dtype": str(np.dtype(array.dtype)),
        "kind": kind_of(array).value,
        "stats": known["stats"] if "stats" in known else feature_stats(array),
        "label_counts": known["label_counts"] if "label_counts" in known else label_counts(array),
        "lengths": length_stats(array.lengths) if isinstance(array, SequenceArray) else None,
    }
    return {**entry, **{k: v for k, v in known.items() if k not in entry}}


def describe(arrays: Mapping[str, ArrayLike], *, classes: list[str] | None = None, columns: list[str] | None = None,
             known: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The description of a dataset, uploaded or built-in (see the module docstring)."""
    described = {name: describe_array(array, (known or {}).get(name)) for name, array in arrays.items()}
    lengths = {len(array) for array in arrays.values()}
    return {
        "version": VERSION,
        "samples": lengths.pop() if len(lengths) == 1 else None,
        "arrays": described,
        "classes": classes,
        "columns": columns,
    }


def array_summary(description: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: {"shape", "dtype", "kind"}}``: the short form kept in ``datasets.arrays``."""
    return {name: {k: info[k] for k in ("shape", "dtype", "kind")} for name, info in description["arrays"].items()}
