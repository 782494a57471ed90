"""What FastAPI's generated OpenAPI document cannot say by itself.

- The bearer scheme: ``api.tenancy.get_tenant`` reads the Authorization header
  by hand (so that a wrong scheme gets its own message), which FastAPI shows as
  a plain header parameter. Here that parameter becomes the ``HTTPBearer``
  security scheme, required by every operation that takes it,
  so "Authorize" in /docs works and clients generated from the document send it.
- The error schema: error responses refer to ``ErrorResponse`` by reference
  (``api.schemas.errors``); it is added to the components here.
"""

from typing import Any

from fastapi import FastAPI

from api.schemas.common import ErrorResponse

SCHEME = "HTTPBearer"
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
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
