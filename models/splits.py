"""Which samples a job trained on, and the part that several jobs all held out.

``split_parts`` is the one split rule: the worker trains on its ``train`` part
(``worker.data.prepare``), and an ensemble recomputes each member's parts with the
member's own seed and data spec to find the samples that no member trained on
(``common_held_out``). Plain numpy: the API may call it too (it imports no TensorFlow).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from models.spec import DataSpec

Part = Literal["train", "validation", "test"]


def split_parts(samples: int, data: DataSpec, seed: int) -> dict[Part, np.ndarray]:
    """The sample indices of each non-empty part: shuffled with ``seed`` first when ``data.shuffle``,
    then train, validation and test in that order (the sizes of ``DataSpec.split_sizes``)."""
    order = np.random.default_rng(seed).permutation(samples) if data.shuffle else np.arange(samples)
    n_train, n_validation, _ = data.split_sizes(samples)
    bounds: dict[Part, tuple[int, int]] = {"train": (0, n_train), "validation": (n_train, n_train + n_validation),
                                           "test": (n_train + n_validation, samples)}
    return {name: order[start:end] for name, (start, end) in bounds.items() if end > start}


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
