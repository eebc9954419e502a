"""A direct dispatcher for the Zoom routes, in front of Starlette's router.

Why: every SIP phone, users and OAuth request is served by one of a dozen routes with fixed
methods; Starlette's generic path (error middleware, exception middleware, a regex match over every
route, a second Request wrapper) costs a measurable share of a request's CPU. Here a request whose
method and path are in the table (an exact path, or a known prefix plus one ``{id}`` segment) goes
straight to the same endpoint function the Starlette route would call, with the same ``Request``,
and its ``Response`` is sent as is. Everything else - docs, OpenAPI, health, static files, HEAD,
unknown paths and methods (Zoom-shaped 404/405 with Allow), a non-empty root path, lifespan -
goes through Starlette unchanged.

The table is built from the Starlette ``Route`` objects themselves, in their order, so that a
request matches here exactly the endpoint Starlette's router would have chosen: an exact path wins
over a parameterised one of the same method (as the static routes come first), and a prefix plus
one non-empty segment without ``/`` is what Starlette's ``{name}`` matches.
"""

from __future__ import annotations

import logging
import re
from typing import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sipphones.api.responses import error_response
from sipphones.errors import InternalError

log = logging.getLogger("sipphones.api")

Endpoint = Callable[[Request], Awaitable[Response]]

# A path with at most one parameter, as the last segment: "/v2/sip_phones/{phone_id}".
_ONE_TRAILING_PARAM = re.compile(r"^(/[^{}]*/)\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class RouteTable:
    """(method, path) -> endpoint, for exact paths and for "prefix/{name}" paths."""

    def __init__(self, routes: Iterable[Route]):
        self.exact: dict[tuple[str, str], Endpoint] = {}
        self.by_prefix: dict[tuple[str, str], tuple[Endpoint, str]] = {}
        for route in routes:
            methods = sorted((route.methods or set()) - {"HEAD"})  # HEAD stays with Starlette
            match = _ONE_TRAILING_PARAM.match(route.path)
            for method in methods:
                if "{" not in route.path:
                    self.exact.setdefault((method, route.path), route.endpoint)
                elif match:
                    self.by_prefix.setdefault((method, match.group(1)), (route.endpoint, match.group(2)))
                else:
                    raise ValueError(f"route {route.path} cannot be dispatched directly")

    def find(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        endpoint = self.exact.get((method, path))
        if endpoint is not None:
            return endpoint, {}
        cut = path.rfind("/") + 1
        if cut <= 1 or cut == len(path):
            return None
        found = self.by_prefix.get((method, path[:cut]))
        if found is None:
            return None
        return found[0], {found[1]: path[cut:]}


class DirectDispatch:
    """ASGI callable: the routes in ``table`` directly, anything else via ``fallback``."""

    def __init__(self, app: object, table: RouteTable, fallback: ASGIApp):
        self.app = app  # what ``request.app`` is (the Starlette application, for its state)
        self.table = table
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            found = self.table.find(scope["method"], scope["path"])
            if found is not None:
                endpoint, params = found
                scope["app"] = self.app
                scope["path_params"] = params
                try:
                    response = await endpoint(Request(scope, receive, send))
                except Exception:  # noqa: BLE001 - the endpoints answer their own errors; this is a backstop
                    log.exception("unexpected error in %s %s", scope["method"], scope["path"])
                    response = error_response(InternalError())
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": response.raw_headers})
                await send({"type": "http.response.body", "body": response.body})
                if response.background is not None:
                    await response.background()
                return
        await self.fallback(scope, receive, send)
