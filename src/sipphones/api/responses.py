"""JSON responses in Zoom's shape."""

from __future__ import annotations

import secrets

import orjson
from starlette.responses import Response

from sipphones.errors import ZoomError


def tracking_id() -> str:
    return secrets.token_hex(12)


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def json_response(content, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    h = {"x-zm-trackingid": tracking_id()}
    if headers:
        h.update(headers)
    return JSON(content, status_code=status, headers=h)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    h = {"x-zm-trackingid": tracking_id()}
    if headers:
        h.update(headers)
    return Response(status_code=status, headers=h)


def error_response(error: ZoomError, extra_headers: dict[str, str] | None = None) -> Response:
    headers = dict(extra_headers or {})
    headers.update(error.headers())
    return json_response(error.body(), error.status, headers)
