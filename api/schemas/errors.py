"""The error statuses of the API as OpenAPI documents them.

Every error the API answers has the one JSON shape (``ErrorResponse``), whatever
the media type of the route's success (an event stream, a CSV, a file), so the
content is spelled out here rather than left to each route's response class.
Routers pick their statuses with ``error_responses(...)``; a test walks the
document and holds the routes to it.
"""

from typing import Any

ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"

RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds after which the request is worth trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}

DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be parsed: a malformed multipart upload, or bytes that are not UTF-8 JSON.",
    401: "No API key, a header that is not `Authorization: Bearer <key>`, or an unknown or revoked key.",
    404: "No such resource for this tenant (another tenant's ids are a 404 too).",
    409: "The resource is in a state that does not allow this (see the message).",
    413: "Too large: the request body or upload, or the job's budget (the message names the limit and the value).",
    415: "The upload is not a supported file type (.npz, .csv or .zip).",
    422: "The request is invalid; `details` names each field (`loc`, `path`) and says what is wrong with it.",
    429: "A per-tenant limit is reached (e.g. queued jobs); wait or cancel some.",
    503: "The database or the broker is unavailable; nothing was changed. Try again after `Retry-After` seconds.",
}

# What every /v1 route can answer: a missing or bad key, bad parameters, an outage.
AUTHENTICATED = (401, 422, 503)


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    """One documented error status, with the JSON error shape (and Retry-After where it is sent)."""
    response: dict[str, Any] = {
        "description": description or DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: ``AUTHENTICATED`` plus ``statuses``."""
    return {status: error_response(status) for status in sorted({*AUTHENTICATED, *statuses})}
