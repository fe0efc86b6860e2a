"""The FastAPI application: `uvicorn api.main:app`. OpenAPI docs at /docs, health at /health."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.auth import BearerAuth
from api.auth import router as auth_router
from api.middleware import CollapseSlashes
from api.routes import automations, connections, health, operations, partner_functions
from models.logging_setup import configure_logging
from models.settings import get_settings

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Integration connections, partner functions, automations and their configuration (the Exsited "
    "integration API, seeds 000/001), plus what operators need: pause/resume, trigger now, run history, "
    "schedule preview. Every /api route needs `Authorization: Bearer <API_TOKEN>`."
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Say loudly at startup when no API token is configured (every authenticated request gets 401)."""
    configure_logging()  # LOG_FORMAT/LOG_LEVEL and credential redaction (models/logging_setup.py)
    if not get_settings().api_token:
        log.warning("API_TOKEN is empty: every /api request will be refused with 401; set API_TOKEN")
    yield


def mount_sandbox(app: FastAPI) -> None:
    """Serve the sandbox integration API at /sandbox when its module exists (it has its own auth)."""
    if importlib.util.find_spec("api.sandbox") is None:
        log.info("api.sandbox is not installed; /sandbox is not served")
        return
    module = importlib.import_module("api.sandbox")
    app.mount("/sandbox", module.sandbox_app)


def create_app() -> FastAPI:
    """Build the app: routers, the error handlers, bearer auth and slash collapsing."""
    app = FastAPI(title="automation-worker", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    for module in (connections, partner_functions, automations, operations, health):
        app.include_router(module.router)
    app.include_router(auth_router)
    errors.install(app)
    app.add_middleware(BearerAuth)
    app.add_middleware(CollapseSlashes)
    mount_sandbox(app)
    return app


app = create_app()
