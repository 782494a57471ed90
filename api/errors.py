"""One error shape everywhere: ``{"error": {"code", "message", "details"}}``."""

import difflib
import logging
import math
from typing import Any

import kombu.exceptions
import psycopg
import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from datastore.lookup import UnknownDataset
from models.spec import JobSpec

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer in the one shape.

    Args:
        retry_after_s: when the client may try again (the answer carries ``Retry-After``).
    """

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, *,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.retry_after_s = retry_after_s


class NotFound(ApiError):
    status_code, code = 404, "not_found"


class Conflict(ApiError):
    status_code, code = 409, "conflict"


class Invalid(ApiError):
    status_code, code = 422, "invalid"


class PayloadTooLarge(ApiError):
    status_code, code = 413, "payload_too_large"


class TooManyRequests(ApiError):
    status_code, code = 429, "too_many_requests"


class UnsupportedMediaType(ApiError):
    status_code, code = 415, "unsupported_media_type"


class Unavailable(ApiError):
    """503: the service cannot answer now (a database or broker away, no database slot); retry later."""

    status_code, code = 503, "unavailable"


# What an outage raises, as opposed to a bug: connection-level errors of the
# database (SQLAlchemy wraps the driver's; pool timeouts; psycopg's own when
# raised outside SQLAlchemy) and of the broker (kombu, redis-py, sockets).
DATABASE_OUTAGES: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError, psycopg.OperationalError, psycopg.InterfaceError,
)
BROKER_OUTAGES: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    ConnectionError,
)


def detail(loc: tuple[Any, ...] | list[Any], message: str) -> dict[str, Any]:
    return {"loc": list(loc), "path": _dotted(loc), "message": message}


def _dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the spec object at ``loc``, for did-you-mean hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        current = next(
            (a for a in _flatten(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), annotation
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _flatten(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None) or getattr(annotation, "__metadata__", None)
    if not args:
        return [annotation]
    out: list[Any] = []
    for arg in args:
        out.extend(_flatten(arg))
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and isinstance(origin, type) and issubclass(origin, BaseModel):
        out.append(origin)
    return out


def validation_details(errors: list[dict[str, Any]], model: type[BaseModel] = JobSpec) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        loc = _clean_loc(error["loc"])
        message = error["msg"]
        if error["type"] == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            at = loc[-1] if loc else 0
            details.append(detail(("body",), f"the body is not valid JSON ({reason} at character {at})"))
            continue
        if error["type"] == "extra_forbidden":
            message = f"unknown field '{loc[-1]}'"
            close = difflib.get_close_matches(str(loc[-1]), _fields_at(model, loc[:-1]), n=1, cutoff=0.5)
            if close:
                message += f"; did you mean '{close[0]}'?"
        elif "input" in error and error["type"] not in ("missing",) and "secret" not in loc:  # never echo a secret
            message += f". Received: {_short(error['input'])}"
        details.append(detail(loc, message))
    return details


def _clean_loc(raw: tuple[Any, ...]) -> tuple[Any, ...]:
    loc = tuple(raw[1:]) if raw and raw[0] == "body" else tuple(raw)
    # Pydantic puts the union tag after "model" ("model.layers.layers[0]"); drop it.
    if len(loc) >= 3 and loc[0] == "model" and loc[1] in ("layers", "keras"):
        loc = (loc[0], *loc[2:])
    return loc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def error_json(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error answer: the exception handlers below and the body-size middleware send it."""
    return JSONResponse(status_code=status,
                        content={"error": {"code": code, "message": message, "details": details or []}},
                        headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's own Allow names only the
    first route that matched the path (GET /v1/jobs and POST /v1/jobs are two routes)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


def _unavailable(request: Request, message: str) -> JSONResponse:
    response = error_json(503, Unavailable.code, message)
    response.headers["Retry-After"] = str(request.app.state.settings.outage_retry_after_s)
    return response


def is_outage(exc: BaseException) -> bool:
    """A database or broker that cannot be reached, rather than a bug."""
    if isinstance(exc, DATABASE_OUTAGES + BROKER_OUTAGES):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if isinstance(exc, Unavailable) and exc.retry_after_s is None:
            return _unavailable(request, exc.message)  # the outage's Retry-After (settings)
        response = error_json(exc.status_code, exc.code, exc.message, exc.details)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    # Handled here, inside the app, an outage is a response like any other: an
    # exception that escaped to uvicorn would be a text/plain 500, and uvicorn
    # closes the keep-alive connection after one.
    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        if not is_outage(exc):
            raise exc  # a bug: the server error handler's 500 and its traceback in the log
        what = "database" if isinstance(exc, (*DATABASE_OUTAGES, sqlalchemy.exc.DBAPIError)) else "broker"
        log.warning("%s %s: the %s is unavailable (%s: %s)", request.method, request.url.path, what,
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return _unavailable(request, f"the {what} is unavailable at the moment; retry shortly")

    for outage in (*DATABASE_OUTAGES, *BROKER_OUTAGES, sqlalchemy.exc.DBAPIError):
        app.add_exception_handler(outage, _outage)

    @app.exception_handler(UnknownDataset)
    async def _unknown_dataset(_: Request, exc: UnknownDataset) -> JSONResponse:
        # The one lookup of a job's dataset (datastore.lookup) raises it: the spec's "dataset" is wrong.
        return error_json(Invalid.status_code, Invalid.code, f"unknown dataset: {exc.message}",
                          [detail(("dataset",), exc.message)])

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        summary = "; ".join(f"{d['path']}: {d['message']}" for d in details[:3])
        return error_json(Invalid.status_code, Invalid.code, f"the request is invalid: {summary}", details)

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses as such (a NUL byte in a text field or JSON, a number out
        # of its column's range) came from the request: it is a 422, not a server error. The
        # driver's first line says what; the SQL and its parameters are left out.
        reason = str(exc.orig or exc).splitlines()[0]
        return error_json(Invalid.status_code, Invalid.code,
                          f"the request holds a value that cannot be stored: {reason}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {cls.status_code: cls.code for cls in (ApiError, NotFound, PayloadTooLarge, UnsupportedMediaType)}
        codes[405] = "method_not_allowed"
        headers = dict(exc.headers or {})  # kept: e.g. WWW-Authenticate
        if exc.status_code == 405:  # RFC 9110: a 405 must say what is allowed
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return error_json(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), headers=headers)
