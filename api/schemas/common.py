from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


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
