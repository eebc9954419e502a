"""What the control plane's routes share: their error handling, the emulator of the running
app, and reading a JSON object from a request within a limit."""

from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from sipphones.api.body import read_body
from sipphones.api.responses import error_response
from sipphones.api.state import app_state
from sipphones.errors import BadRequest, ClientGone, InternalError, NotFound, ZoomError

log = logging.getLogger("sipphones.api")

MAX_CONTROL_BODY = 65_536

Endpoint = Callable[[Request], Awaitable[Response]]


def control_route(handler: Endpoint) -> Endpoint:
    """``handler`` with Zoom-shaped errors: its ``ZoomError`` as itself, anything else a 500."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ZoomError as e:
            return error_response(e)
        except ClientDisconnect:
            return error_response(ClientGone())
        except Exception:  # noqa: BLE001 - never a framework error body
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return error_response(InternalError())

    return endpoint


def emulator_of(request: Request) -> Any:
    """The running app's emulator (``state.emulator``); a 404 outside emulator mode."""
    emulator = app_state(request).emulator
    if emulator is None:
        raise NotFound()
    return emulator


async def json_object(request: Request, *, empty_is: dict | None = None) -> dict:
    """The request's body as a JSON object (at most ``MAX_CONTROL_BODY`` bytes); an empty body is
    ``empty_is`` when given, else refused."""
    raw = await read_body(request, MAX_CONTROL_BODY)
    if not raw.strip() and empty_is is not None:
        return dict(empty_is)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("Request Body should be a valid JSON object.")
    return body
