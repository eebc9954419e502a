"""Service endpoints outside Zoom's contract: health, the OpenAPI document, the docs page, and
``GET /`` (which leads to the admin console, ``/console``).

``/docs`` is Swagger UI from the ``swagger-ui-bundle`` package, served by this process from
``/docs/static`` (mounted in app.py): no CDN, and a Content-Security-Policy that lets the page load
nothing from anywhere else (Swagger UI's online validator badge is switched off for that reason).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sipphones import __version__
from sipphones.api.openapi import document_bytes
from sipphones.api.responses import error_response, json_response
from sipphones.api.state import app_state
from sipphones.errors import ZoomError

HEALTH_DB_TIMEOUT = 2.0  # seconds: a health check must answer quickly, even when the database hangs


async def healthz(request: Request) -> Response:
    state = app_state(request)

    try:
        await asyncio.wait_for(state.repo.ping(), HEALTH_DB_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure (or the timeout) means "not healthy"
        return error_response(ZoomError("Database unavailable.", status=503, code=503))
    return json_response({"status": "ok", "version": __version__, "database": state.repo.dialect,
                          "rate_limit_storage": state.limiter.backend})


async def openapi(request: Request) -> Response:
    return Response(document_bytes(), media_type="application/json")


DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sipphones API</title>
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>"""

DOCS_INIT_JS = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null
});
"""


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": DOCS_CSP})


async def docs_init(request: Request) -> Response:
    return Response(DOCS_INIT_JS, media_type="text/javascript")


async def root(request: Request) -> Response:
    """A browser opening the service lands on the admin console (a relative ``Location``: nothing
    is built from the ``Host`` header)."""
    return RedirectResponse("/console", status_code=302)


routes = [
    Route("/", root, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/init.js", docs_init, methods=["GET"]),
]
