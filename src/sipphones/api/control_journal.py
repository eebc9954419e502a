"""The control plane's request journal routes (under ``/_sipphones/v1``, operator token checked by
the mount, ``sipphones.api.control``):

- ``GET /journal?method=&path=&account_id=&status=&since=&until=&limit=&order=`` ->
  ``{"requests": [...], "total": N}``: the entries selected (``path`` a glob such as
  ``/v2/sip_phones*``; ``since``/``until`` Unix seconds or ISO-8601; ``limit`` 1-10000, default
  100; ``order`` ``asc``, oldest first, the default, or ``desc``), ``total`` how many match in all;
- ``GET /journal/{id}`` -> one entry;
- ``POST /journal/count`` with a matcher ``{"method", "path", "account_id", "status", "since",
  "until", "body": {...}}`` -> ``{"count": N}``;
- ``DELETE /journal`` -> ``{"cleared": N}``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.control import json_object
from sipphones.api.state import app_state
from sipphones.api.responses import error_response, json_response
from sipphones.emulator.journal import MAX_QUERY_LIMIT, Matcher
from sipphones.errors import FieldError, NotFound, ValidationFailed

_QUERY_FIELDS = ("method", "path", "account_id", "status", "since", "until")


async def list_requests(request: Request) -> Response:
    params = request.query_params
    unknown = sorted(set(params) - {*_QUERY_FIELDS, "limit", "order"})
    if unknown:
        raise ValidationFailed([FieldError(name[:64], "unknown parameter") for name in unknown])
    data: dict[str, object] = {name: params[name] for name in _QUERY_FIELDS if params.get(name)}
    if "status" in data:
        data["status"] = _integer(str(data["status"]), "status")
    matcher = Matcher.parse(data, with_body=False)
    limit = _integer(params.get("limit") or "100", "limit")
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise ValidationFailed([FieldError("limit", f"must be from 1 to {MAX_QUERY_LIMIT}")])
    order = params.get("order") or "asc"
    if order not in ("asc", "desc"):
        raise ValidationFailed([FieldError("order", "must be asc or desc")])
    entries, total = app_state(request).emulator.journal.query(matcher, limit=limit, newest_first=order == "desc")
    return json_response({"requests": [e.as_dict() for e in entries], "total": total})


async def get_request(request: Request) -> Response:
    raw = request.path_params["entry_id"]
    found = app_state(request).emulator.journal.get(int(raw)) if raw.isdigit() and len(raw) < 19 else None
    if found is None:
        return error_response(NotFound(f"No journal entry {raw[:64]}."))
    return json_response(found.as_dict())


async def count_requests(request: Request) -> Response:
    matcher = Matcher.parse(await json_object(request))
    return json_response({"count": app_state(request).emulator.journal.count(matcher)})


async def clear_requests(request: Request) -> Response:
    return json_response({"cleared": app_state(request).emulator.journal.clear()})


def _integer(text: str, name: str) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed([FieldError(name, "must be a whole number")])
    return int(text)


routes = [
    Route("/journal", list_requests, methods=["GET"]),
    Route("/journal", clear_requests, methods=["DELETE"]),
    Route("/journal/count", count_requests, methods=["POST"]),
    Route("/journal/{entry_id}", get_request, methods=["GET"]),
]
