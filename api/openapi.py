"""What FastAPI's generated OpenAPI document cannot say by itself.

- The bearer scheme: ``api.tenancy.get_tenant`` reads the Authorization header
  by hand (so that a wrong scheme gets its own message), which FastAPI shows as
  a plain header parameter. Here that parameter becomes the ``HTTPBearer``
  security scheme, required by every operation that takes it,
  so "Authorize" in /docs works and clients generated from the document send it.
- The error schema: error responses refer to ``ErrorResponse`` by reference
  (``api.schemas.errors``); it is added to the components here.
- Closed objects (the job spec's, a retry's: ``extra="forbid"``) say so as
  ``additionalProperties: {"not": {}}`` instead of pydantic's ``false``. The two mean the
  same to JSON Schema (no extra key is valid), but openapi-python-client reads ``false``
  as "drop unknown keys": its ``FitSpec.from_dict({"n_epoch": 5})`` silently lost the key
  and the job was queued with the default epochs. With a schema it keeps them, typed
  ``Any``, and sends them, so the API's 422 ("did you mean 'epochs'?") reaches the user
  (tests/e2e/test_generated_client.py).
"""

from typing import Any

from fastapi import FastAPI

from api.schemas.common import ErrorResponse

SCHEME = "HTTPBearer"
CLOSED = {"not": {}}  # no additional property is valid: JSON Schema's ``false``, spelled as a schema
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `Authorization: Bearer <key>`. Create one with `trainyard keys create`. "
                   "Each key belongs to one tenant, which sees only its own jobs and datasets. "
                   "(`trainyard serve` may let requests from localhost in without a key: "
                   "TRAINYARD_ALLOW_ANONYMOUS_LOCALHOST.)",
}


def _takes_authorization(parameter: dict[str, Any]) -> bool:
    return parameter.get("in") == "header" and parameter.get("name", "").lower() == "authorization"


def _closed_as_schema(node: Any) -> None:
    """``additionalProperties: false`` → ``CLOSED``, everywhere in ``node`` (components and inline schemas)."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            node["additionalProperties"] = dict(CLOSED)
        for value in node.values():
            _closed_as_schema(value)
    elif isinstance(node, list):
        for value in node:
            _closed_as_schema(value)


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's own; it caches, and regenerates when routes are added

    def openapi() -> dict[str, Any]:
        schema = generate()
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error_schema.pop("$defs", {}))
        schemas.setdefault("ErrorResponse", error_schema)
        components.setdefault("securitySchemes", {})[SCHEME] = SECURITY_SCHEME
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                parameters = operation.get("parameters", [])
                # get_tenant is what reads the Authorization header: taking it means needing a key.
                if not any(_takes_authorization(p) for p in parameters):
                    continue
                operation["security"] = [{SCHEME: []}]
                operation["parameters"] = [p for p in parameters if not _takes_authorization(p)]
                if not operation["parameters"]:
                    del operation["parameters"]
        _closed_as_schema(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
