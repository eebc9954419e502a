"""Service endpoints outside Zoom's contract: health, the OpenAPI document, the docs page."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sipphones import __version__
from sipphones.api.openapi import build_document
from sipphones.api.responses import error_response, json_response
from sipphones.errors import ZoomError


async def healthz(request: Request) -> Response:
    state = request.app.state.sipphones
    try:
        async with state.repo.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001
        return error_response(ZoomError("Database unavailable.", status=503, code=503))
    return json_response({"status": "ok", "version": __version__, "database": state.repo.engine.dialect.name})


async def openapi(request: Request) -> Response:
    return json_response(build_document())


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sipphones API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>"""


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_HTML)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
