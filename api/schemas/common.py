from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")

# A metrics dict: Keras's epoch logs by name, non-finite values as null (worker/job_store.json_number), and the
# epoch (an integer) in last_metrics and best_metrics. int before float so an epoch stays an integer.
Metrics = dict[str, int | float | None]

# Event ids are 64-bit (BIGINT): a larger one in a query or header is a 422, not a database overflow.
EVENT_ID_MAX = 2**63 - 1


class ListPage(BaseModel, Generic[T]):
    """The list envelope of every collection: pass ``next_cursor`` back as ``cursor``."""

    items: list[T]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    loc: list[str | int]
    path: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorBody
