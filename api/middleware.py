"""Collapse repeated slashes: the SDK joins a base URL ending in "/" with paths starting with "/"."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_SLASHES = re.compile(r"/{2,}")


class CollapseSlashes:
    """`//api/v3/integration` is routed as `/api/v3/integration`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope.get("path", ""):
            scope = dict(scope)
            scope["path"] = _SLASHES.sub("/", scope["path"])
            if "raw_path" in scope and scope["raw_path"] is not None:
                scope["raw_path"] = _SLASHES.sub("/", scope["raw_path"].decode("latin-1")).encode("latin-1")
        await self.app(scope, receive, send)
