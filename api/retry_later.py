"""429s that say when to come back (``Retry-After``), in the one error shape."""

import math

from fastapi import FastAPI, Request
from fastapi.responses import Response

from api.errors import ApiError, TooManyRequests


class RetryLater(TooManyRequests):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def install_retry_after(app: FastAPI) -> None:
    """After ``install_error_handlers``: the ApiError response, plus the header."""
    api_error = app.exception_handlers[ApiError]

    async def _retry_later(request: Request, exc: Exception) -> Response:
        response = await api_error(request, exc)
        assert isinstance(exc, RetryLater)
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    app.add_exception_handler(RetryLater, _retry_later)
