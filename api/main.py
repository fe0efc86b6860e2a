"""The FastAPI application: `uvicorn api.main:app`. OpenAPI docs at /docs, health at /health."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import docs, errors, openapi
from api.access_log import quiet_sandbox_access
from api.auth import BearerAuth
from api.auth import router as auth_router
from api.middleware import CollapseSlashes
from api.routes import (
    automations,
    connections,
    explain,
    health,
    metrics,
    operations,
    overview,
    partner_functions,
)
from models.errors import ConfigurationError
from models.logging_setup import configure_logging
from models.settings import require_secrets

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Integration connections, partner functions, automations and their configuration (the Exsited "
    "integration API, seeds 000/001), plus what operators need: pause/resume, trigger now, run history, "
    "schedule preview. Every /api route needs `Authorization: Bearer <API_TOKEN>`.\n\n"
    "Errors are `{\"errors\": [{\"field\", \"message\"}]}`, `field` being the dotted path of the bad "
    "field. Request bodies are read as the seeds and SDKs send them: booleans may be \"true\"/\"false\", "
    "numbers numeric strings, closed sets any letter case; each field's schema says exactly what it "
    "takes. What JSON Schema cannot say (a schedule's grammar, a partner function that must exist, "
    "criteria that must compile, text that must parse as a JSON object) an operation lists in "
    "`x-server-validated-fields`: a request the document allows may be refused with a 422 naming one "
    "of those, and only those."
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Refuse to start without an API token or with the development SECRET_KEY (`make run` sets both)."""
    configure_logging()  # LOG_FORMAT/LOG_LEVEL and credential redaction (models/logging_setup.py)
    quiet_sandbox_access()  # no /sandbox access lines unless SANDBOX_ACCESS_LOG=true
    try:
        require_secrets("the API")
    except ConfigurationError as exc:
        log.critical("%s", exc)
        raise
    yield


def mount_sandbox(app: FastAPI) -> None:
    """Serve the sandbox integration API at /sandbox when its module exists (it has its own auth)."""
    if importlib.util.find_spec("sandbox.app") is None:
        log.info("sandbox.app is not installed; /sandbox is not served")
        return
    module = importlib.import_module("sandbox.app")
    app.mount("/sandbox", module.sandbox_app)


def create_app() -> FastAPI:
    """Build the app: routers, the error handlers, bearer auth and slash collapsing."""
    app = FastAPI(title="automation-worker", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served by api/docs.py from packaged assets
    docs.install(app)
    routers = (connections, partner_functions, automations, operations, explain, health, overview, metrics)
    for module in routers:
        app.include_router(module.router)
    app.include_router(auth_router)
    errors.install(app)
    app.add_middleware(BearerAuth)
    app.add_middleware(CollapseSlashes)
    mount_sandbox(app)
    app.openapi = lambda: openapi.build(app)  # type: ignore[method-assign]
    return app


app = create_app()
