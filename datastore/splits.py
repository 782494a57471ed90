"""Which samples a job trains on, validates on and tests on: the one rule, for the worker and the API.

The order: the stored samples, shuffled with the job's seed unless ``data.shuffle`` is false (then
the splits take the last fractions, as Keras's ``validation_split`` does). The test part is always
the last ``n_test`` samples of that order, with or without folds, so a job and its cross-validation
with the same seed test on the same samples.

Cross-validation (``data.folds: K``): the test part is set aside first and stays out of every fold;
the rest (the pool) is cut into K folds by scikit-learn's ``StratifiedKFold`` when the targets are a
classifier's class labels (each fold then keeps the class proportions), else by ``KFold``, with the
job's seed. Fold ``i`` trains on the other K-1 folds and is validated on fold ``i``: over the K fold
jobs every pool sample is held out exactly once.

Ensembles: each member's parts are recomputed with its own seed and data spec, and the members are
judged on the samples none of them trained on (``common_held_out``).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

Part = Literal["train", "validation", "test"]


class SplitOptions(Protocol):
    """What the split rule reads of a job's ``data`` spec (``models.spec.DataSpec``; the datastore imports
    no other project package)."""

    @property
    def shuffle(self) -> bool: ...

    @property
    def folds(self) -> int | None: ...

    def split_sizes(self, samples: int) -> tuple[int, int, int]: ...


def sample_order(samples: int, seed: int, shuffle: bool) -> np.ndarray:
    """The samples in the order the splits cut them (see the module docstring)."""
    return np.random.default_rng(seed).permutation(samples) if shuffle else np.arange(samples)


@dataclass(frozen=True)
class FoldParts:
    train: np.ndarray  # sample indices into the stored data
    held_out: np.ndarray  # the fold's validation part
    test: np.ndarray


def _pool_and_test(order: np.ndarray, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    cut = len(order) - n_test
    return order[:cut], order[cut:]


def holdout_parts(order: np.ndarray, *, n_validation: int, n_test: int) -> dict[str, np.ndarray]:
    """An ordinary job's parts (``models.spec.split_sizes`` gives the sizes): the test part from the end
    of ``order``, the validation part before it, training the rest; empty parts left out."""
    pool, test = _pool_and_test(order, n_test)
    cut = len(pool) - n_validation
    parts = {"train": pool[:cut], "validation": pool[cut:], "test": test}
    return {name: indices for name, indices in parts.items() if len(indices)}


def fold_parts(order: np.ndarray, *, n_test: int, folds: int, fold: int, seed: int, shuffle: bool,
               labels: np.ndarray | None) -> FoldParts:
    """Fold ``fold`` (0-based) of ``folds``.

    Args:
        order: ``sample_order`` of the dataset.
        n_test: the test part's size (``models.spec.split_sizes``); taken from the end of ``order``.
        labels: one class label per stored sample (indexed by sample, not by ``order``) to stratify
            by, or None for plain K-fold (regression, multi-label, sequence targets).

    Raises:
        ValueError: ``fold_problem`` would have refused these folds.
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}). Received: fold={fold}")
    if (problem := fold_problem(order, n_test=n_test, folds=folds, labels=labels)) is not None:
        raise ValueError(problem)
    pool, test = _pool_and_test(order, n_test)
    random_state = seed if shuffle else None
    if labels is None:
        splits = KFold(n_splits=folds, shuffle=shuffle, random_state=random_state).split(pool)
    else:
        splits = StratifiedKFold(n_splits=folds, shuffle=shuffle, random_state=random_state).split(
            pool, labels[pool])
    for index, (train, held_out) in enumerate(splits):
        if index == fold:
            return FoldParts(train=pool[train], held_out=pool[held_out], test=test)
    raise AssertionError("unreachable: KFold yields n_splits folds")


def fold_problem(order: np.ndarray, *, n_test: int, folds: int, labels: np.ndarray | None) -> str | None:
    """Why these samples cannot be cut into ``folds`` folds (a sentence for the user), or None."""
    pool, _ = _pool_and_test(order, n_test)
    outside = f" outside the test part (test_split holds {n_test})" if n_test else ""
    if folds > len(pool):
        return (f"{folds} folds need at least {folds} samples{outside}; there are {len(pool)}. "
                f"Received: folds={folds}")
    if labels is not None:
        classes, counts = np.unique(labels[pool], return_counts=True)
        smallest = int(counts.argmin())
        if counts[smallest] < folds:
            return (f"stratified {folds}-fold cross-validation needs at least {folds} samples of every class"
                    f"{outside}; class {classes[smallest].item()} has {int(counts[smallest])}. "
                    f"Use fewer folds. Received: folds={folds}")
    return None


def indices_digest(indices: np.ndarray) -> str:
    """A short fingerprint of a set of sample indices (order-free), to show which part a fold held out."""
    return hashlib.sha256(np.sort(np.asarray(indices, dtype=np.int64)).tobytes()).hexdigest()[:16]


def split_parts(samples: int, data: SplitOptions, seed: int, *, fold: int | None = None,
                labels: np.ndarray | None = None) -> dict[Part, np.ndarray]:
    """The sample indices of each non-empty part of a job's data: the rule the worker trains by.

    Args:
        fold: with ``data.folds``, the fold (0-based) the job trains: its held-out fold is the validation part.
        labels: with ``data.folds``, the class label of each stored sample to stratify by, or None.

    Raises:
        ValueError: nothing is left to train on, or the folds cannot be cut (the message names the field).
    """
    order = sample_order(samples, seed, data.shuffle)
    n_train, n_validation, n_test = data.split_sizes(samples)
    if n_train < 1:
        raise ValueError(f"data: {samples} samples leave nothing to train on after the splits")
    if data.folds is None:
        return holdout_parts(order, n_validation=n_validation, n_test=n_test)  # type: ignore[return-value]
    if fold is None:
        raise ValueError(f"data.folds: this job is not a fold of a cross-validation run (folds={data.folds})")
    try:
        cut = fold_parts(order, n_test=n_test, folds=data.folds, fold=fold, seed=seed, shuffle=data.shuffle,
                         labels=labels)
    except ValueError as exc:
        raise ValueError(f"data.folds: {exc}") from exc
    parts: dict[Part, np.ndarray] = {"train": cut.train, "validation": cut.held_out, "test": cut.test}
    return {name: indices for name, indices in parts.items() if len(indices)}


class NoHeldOut(ValueError):
    """The members share no held-out sample; ``member`` is the index of the one to blame (None: all together)."""

    def __init__(self, message: str, member: int | None = None) -> None:
        super().__init__(message)
        self.member = member


@dataclass(frozen=True)
class HeldOut:
    part: Literal["test", "validation"]
    indices: np.ndarray  # sorted

    def __len__(self) -> int:
        return len(self.indices)


def common_held_out(members: Sequence[dict[Part, np.ndarray]]) -> HeldOut:
    """The samples no member trained on: the intersection of the members' test parts when every member has
    one, else of their validation parts (a sample in a member's validation or test part is never in its
    training part, so neither intersection holds a sample any member trained on).

    Raises:
        NoHeldOut: a member has neither part to offer, or the intersection is empty.
    """
    part: Literal["test", "validation"] = "test" if all("test" in m for m in members) else "validation"
    for index, member in enumerate(members):
        if part not in member:
            raise NoHeldOut("it holds out no sample (no validation_split, and not every member has a test_split): "
                            "no common held-out part", index)
    common = members[0][part]
    for member in members[1:]:
        common = np.intersect1d(common, member[part])
    if len(common) == 0:
        raise NoHeldOut(f"the members' {part} parts share no sample (different seeds or splits): give them the "
                        "same seed and data splits, or a larger test_split")
    return HeldOut(part, np.sort(common))


def held_out_parts(samples: int, data: SplitOptions, seed: int) -> dict[Part, np.ndarray]:
    """The parts a finished job did not train on, as far as they follow from its spec alone: a fold job's
    held-out fold also depends on the labels its folds were stratified by, so only its test part is given
    (members that are folds of one run then share their test part, or nothing)."""
    if data.folds is None:
        return {name: part for name, part in split_parts(samples, data, seed).items() if name != "train"}
    _, test = _pool_and_test(sample_order(samples, seed, data.shuffle), data.split_sizes(samples)[2])
    return {"test": test} if len(test) else {}
