"""The one place errors become HTTP: every 4xx (and the rare 5xx) is `{"errors": [{"field", "message"}]}`."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from models.errors import ConflictError, DefinitionError, EnqueueError, FieldError, NotFoundError
from models.store.validation import pydantic_errors

log = logging.getLogger(__name__)
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def error_response(status: int, errors: Iterable[FieldError], headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    """The errors body with the given status."""
    body = {"errors": [{"field": e.field, "message": e.message} for e in errors]}
    return JSONResponse(status_code=status, content=body, headers=headers)


def one_error(status: int, field: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An errors body with a single entry."""
    return error_response(status, [FieldError(field, message)], headers)


async def _definition(_: Request, exc: Exception) -> JSONResponse:
    """Bad schedule, criteria or field: 422 naming every bad field."""
    assert isinstance(exc, DefinitionError)
    return error_response(422, exc.errors)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    """Unknown UUID (or not under the given parent)."""
    assert isinstance(exc, NotFoundError)
    return one_error(404, exc.field, exc.message)


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    """The request clashes with stored state (a duplicate code)."""
    assert isinstance(exc, ConflictError)
    return one_error(409, exc.field, exc.message)


async def _integrity(request: Request, exc: Exception) -> JSONResponse:
    """A constraint caught what the checks could not (a race between two writers)."""
    log.warning("integrity error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return one_error(409, "body", "conflicts with stored data (a concurrent change?); retry")


async def _enqueue(_: Request, exc: Exception) -> JSONResponse:
    """The broker is down: the run is recorded failed, the client may retry."""
    return one_error(503, "redis", str(exc))


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    """Wrong types, missing fields, bad query parameters; invalid JSON names "body"."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return one_error(422, "body", "is not valid JSON")
    return error_response(422, pydantic_errors(errors, strip=("body", "query", "path", "header")))


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (routes are one per method), and OPTIONS: asked of the
    router itself, method by method, so included routers are looked into as the router would."""
    routes = request.app.router.routes
    served = [m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] is Match.FULL
                                         for r in routes)]
    return [*served, "OPTIONS"]


async def _http(request: Request, exc: Exception) -> Response:
    """Routing and body-parsing errors; a body FastAPI cannot parse (e.g. absurdly nested) is a 422.

    A method the path does not serve is a 405 whose Allow lists every method of the resource (Starlette
    would name only the first route's); OPTIONS answers 204 with that Allow.
    """
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        return one_error(422, "body", "could not be parsed as JSON (invalid or nested too deeply)")
    if exc.status_code == 405:
        allow = {"Allow": ", ".join(allowed_methods(request))}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=allow)
        return one_error(405, "path", f"method {request.method} is not allowed here", allow)
    field = "path" if exc.status_code in (404, 405) else "request"
    return one_error(exc.status_code, field, str(exc.detail), dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback, answered in the same shape."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return one_error(500, "server", "internal error; it has been logged")


def install(app: FastAPI) -> None:
    """Register every handler on the app."""
    app.add_exception_handler(DefinitionError, _definition)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(EnqueueError, _enqueue)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
