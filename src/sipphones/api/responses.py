"""JSON responses in Zoom's shape."""

from __future__ import annotations

import os

import orjson
from starlette.responses import Response

from sipphones.errors import ZoomError


def tracking_id() -> str:
    """24 random hex digits, as Zoom's; ``os.urandom`` directly (what ``secrets.token_hex`` calls)."""
    return os.urandom(12).hex()


_TRACKING = b"x-zm-trackingid"


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def json_response(content, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if not headers:  # the common case: the tracking id goes first, as the general path below puts it
        response = JSON(content, status_code=status)
        response.raw_headers.insert(0, (_TRACKING, os.urandom(12).hex().encode()))
        return response
    h = {"x-zm-trackingid": tracking_id()}
    if headers:
        h.update(headers)
    return JSON(content, status_code=status, headers=h)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    if not headers:
        response = Response(status_code=status)
        response.raw_headers.insert(0, (_TRACKING, os.urandom(12).hex().encode()))
        return response
    h = {"x-zm-trackingid": tracking_id()}
    if headers:
        h.update(headers)
    return Response(status_code=status, headers=h)


def error_response(error: ZoomError, extra_headers: dict[str, str] | None = None) -> Response:
    headers = dict(extra_headers or {})
    headers.update(error.headers())
    return json_response(error.body(), error.status, headers)
