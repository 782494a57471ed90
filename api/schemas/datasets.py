from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from datastore.kinds import ArrayKind


class ArrayInfo(BaseModel):
    shape: list[int | None] = Field(description="samples first; null for a variable axis (sequence steps, image sides)")
    dtype: str
    kind: str = Field(default=ArrayKind.dense.value, description=" | ".join(ArrayKind))


class DatasetOut(BaseModel):
    id: str
    builtin: bool
    title: str | None = Field(default=None, description="what a built-in dataset holds")
    filename: str | None = None
    format: str = Field(description="npz | csv | images | builtin")
    sha256: str | None
    size_bytes: int | None
    samples: int | None
    arrays: dict[str, ArrayInfo]
    classes: list[str] | None = Field(default=None, description="image folders: class names, index = label")
    description: dict[str, Any] | None = Field(
        default=None,
        description="shapes, dtypes, per-feature min/max/mean/std, label counts, sequence lengths (see README, "
                    "Datasets); left out of list pages",
    )
    created_at: datetime | None


def samples_of(arrays: dict[str, Any]) -> int | None:
    lengths = {info["shape"][0] for info in arrays.values() if info["shape"]}
    return lengths.pop() if len(lengths) == 1 else None
