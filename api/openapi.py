"""The OpenAPI document, made to match the server: error responses, links, security, what it cannot say.

Routes declare their error answers with `errors(...)` and their links with `links(...)`; `build` adds
what FastAPI does not: the two security schemes (the bearer token on /api, HTTP Basic client
credentials on the token exchange) and the shared JSON value schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from models.schemas.common import ErrorBody
from models.schemas.fields import NO_NUL, json_value_schema

#: The vendor extension naming the request fields the server validates beyond what JSON Schema can say
#: (a schedule's grammar, a partner function that must exist, criteria that must compile): a request the
#: document allows may still be refused with a 422 naming one of these, and only these.
SERVER_VALIDATED = "x-server-validated-fields"
BEARER = "bearerToken"
CLIENT_BASIC = "clientCredentials"

#: The token exchange's body fields (JSON or a form), as the SDK sends them; any other field is ignored.
TOKEN_REQUEST_FIELDS = ("grant_type", "client_id", "client_secret", "redirect_uri", "exsited_url")
TOKEN_REQUEST = {"type": "object", "properties": {name: {"type": "string"} for name in TOKEN_REQUEST_FIELDS},
                 "description": "client credentials (unless sent with HTTP Basic); grant_type is not checked"}
CONFIGURATION_PATCH = {
    "type": "object", "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
    "description": "a JSON merge patch (RFC 7386) of the stored configuration document: objects merge key "
                   "by key, null removes a key, anything else replaces",
}
_ERRORS: dict[int, str] = {
    401: "missing or invalid bearer token",
    404: "unknown UUID (or not under the given connection)",
    409: "conflicts with stored data: a duplicate code, a second connection to one provider's tenant "
         "(remote_instance_id), or a concurrent change (retry)",
    422: "invalid request: every bad field is named by its dotted path",
    502: "the connection's integration API failed (the error names it and its HTTP status)",
    503: "a service the request needs is unavailable",
}


def errors(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """Documented error answers, each `{"errors": [{"field", "message"}]}`; `e503="..."` words one."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        described = descriptions.get(f"e{code}", _ERRORS[code])
        entry: dict[str, Any] = {"model": ErrorBody, "description": described}
        if code == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
        out[code] = entry
    return out


def link(operation_id: str, description: str, body: Any = None, **parameters: str) -> dict[str, Any]:
    """One OpenAPI link: the target operation and runtime expressions for its parameters (and body)."""
    out: dict[str, Any] = {"operationId": operation_id, "parameters": parameters, "description": description}
    if body is not None:
        out["requestBody"] = body
    return out


def with_links(status: int, links: dict[str, dict[str, Any]],
               **extra: Any) -> dict[int | str, dict[str, Any]]:
    """A `responses` entry adding links (and anything else) to the success answer."""
    return {status: {"links": links, **extra}}


def server_validated(*fields: str) -> dict[str, Any]:
    """`openapi_extra` naming the fields validated beyond the document (see SERVER_VALIDATED)."""
    return {SERVER_VALIDATED: list(fields)}


def build(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus security schemes, per-operation security and the JSON value schema."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(JsonValue=json_value_schema(), TokenRequest=TOKEN_REQUEST,
                   ConfigurationPatch=CONFIGURATION_PATCH)
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer", "description": "API_TOKEN (one of them, when it holds "
                 "several comma-separated tokens)"},
        CLIENT_BASIC: {"type": "http", "scheme": "basic", "description": "API_CLIENT_ID and "
                       "API_CLIENT_SECRET (they may come in the request body instead)"},
    }
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            _drop_default_422(operation)
            if path.startswith("/api/v1/oauth2/"):
                operation["security"] = [{CLIENT_BASIC: []}, {}]
            elif path.startswith("/api/"):
                operation["security"] = [{BEARER: []}]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = doc
    return doc


def _drop_default_422(operation: dict[str, Any]) -> None:
    """FastAPI adds a 422 of its own shape to every operation with parameters; ours declare theirs (in
    the errors shape) where a 422 can happen, so the rest is dropped: a path UUID is never a 422."""
    answer = operation.get("responses", {}).get("422", {})
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        del operation["responses"]["422"]
