from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ArrayInfo(BaseModel):
    shape: list[int]
    dtype: str


class DatasetOut(BaseModel):
    id: str
    builtin: bool
    description: str | None = None
    filename: str | None = None
    format: str
    sha256: str | None
    size_bytes: int | None
    samples: int | None
    arrays: dict[str, ArrayInfo]
    created_at: datetime | None


def samples_of(arrays: dict[str, Any]) -> int | None:
    lengths = {info["shape"][0] for info in arrays.values() if info["shape"]}
    return lengths.pop() if len(lengths) == 1 else None
