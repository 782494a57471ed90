"""The dataset schema of the API, and the function that builds it (the routes call it)."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from datastore.kinds import ArrayKind
from models.tables import Dataset

if TYPE_CHECKING:
    from api.services.datasets import Builtin


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


def dataset_out(dataset: "Dataset | Builtin", *, full: bool = True) -> DatasetOut:
    """An uploaded or a built-in dataset; ``full=False`` (list pages) leaves the description out."""
    if not isinstance(dataset, Dataset):
        return DatasetOut(
            id=dataset.id, builtin=True, title=dataset.title, format="builtin", sha256=None, size_bytes=None,
            samples=samples_of(dataset.arrays), arrays=dataset.arrays,
            description=dataset.description if full else None, created_at=None,
        )
    description = dataset.description or {}
    return DatasetOut(
        id=dataset.id, builtin=False, filename=dataset.filename, format=dataset.format, sha256=dataset.sha256,
        size_bytes=dataset.size_bytes, samples=samples_of(dataset.arrays), arrays=dataset.arrays,
        classes=description.get("classes"), description=dataset.description if full else None,
        created_at=dataset.created_at,
    )
