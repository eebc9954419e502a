"""The emulator's HTTP control plane under ``/_sipphones/v1`` (emulator mode only; see
``sipphones.emulator``): reset, fresh accounts, snapshots and the clock here; the request journal
and the fault rules in ``control_journal`` / ``control_faults``.

Every route inside the mount needs ``Authorization: Bearer <operator token>`` (the settings'
``admin_token``); a missing or wrong token is Zoom's 401 body, code 124. Outside emulator mode
the mount does not exist and every one of these paths is the Zoom-shaped 404 of any unknown path.
Bodies are JSON objects, read within ``MAX_CONTROL_BODY`` (a snapshot may be large), and a bad one
is a 400 in Zoom's shape with a sentence that says what is wrong.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router

from sipphones.api.body import read_body
from sipphones.api.responses import error_response, json_response
from sipphones.api.state import app_state
from sipphones.errors import BadRequest, ZoomError

PREFIX = "/_sipphones/v1"
MAX_CONTROL_BODY = 64 * 1024 * 1024   # bytes: a snapshot of a large test state
MAX_SMALL_BODY = 64 * 1024            # bytes: every other control request


class OperatorTokenRequired(ZoomError):
    status = 401
    code = 124
    message = "Invalid operator token: the control plane needs 'Authorization: Bearer <SIPPHONES_ADMIN_TOKEN>'."


def _emulator(request: Request):
    return app_state(request).emulator


async def json_object(request: Request, limit: int = MAX_SMALL_BODY) -> dict[str, Any]:
    """The request's JSON object body (an empty body is ``{}``)."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _field(body: dict, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and kind not in (bool, (bool,)):
        raise BadRequest(f"'{name}' has the wrong type.")
    if not isinstance(value, kind):
        raise BadRequest(f"'{name}' has the wrong type.")
    return value


async def health(request: Request) -> Response:
    emulator = _emulator(request)
    return json_response({"status": "ok", "emulator": True, "clock": emulator.clock.describe(),
                          "journal": emulator.journal is not None, "faults": emulator.faults is not None})


async def reset(request: Request) -> Response:
    body = await json_object(request)
    account_id = _field(body, "account_id", str)
    if account_id is not None and not 0 < len(account_id) <= 64:
        raise BadRequest("'account_id' must be 1 to 64 characters.")
    return json_response(await _emulator(request).reset(account_id))


async def fresh_account(request: Request) -> Response:
    body = await json_object(request)
    scopes = _field(body, "scopes", (list, str))
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    users = _field(body, "users", list, [])
    if scopes is not None and not all(isinstance(s, str) for s in scopes):
        raise BadRequest("'scopes' must be a list of strings.")
    if not all(isinstance(u, str) for u in users):
        raise BadRequest("'users' must be a list of e-mail addresses.")
    try:
        created = await _emulator(request).fresh_account(
            plan=_field(body, "plan", str, "pro"), scopes=scopes, name=_field(body, "name", str, "Test account"),
            sip_phone_integration=_field(body, "sip_phone_integration", bool, True),
            unlimited=_field(body, "unlimited", bool, False), users=users)
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return json_response(created, 201)


async def get_snapshot(request: Request) -> Response:
    return json_response(await _emulator(request).snapshot())


async def put_snapshot(request: Request) -> Response:
    body = await json_object(request, MAX_CONTROL_BODY)
    baseline = request.query_params.get("baseline", "") in ("1", "true", "yes")
    try:
        loaded = await _emulator(request).load_snapshot(body, baseline=baseline)
    except ValueError as e:
        raise BadRequest(f"The snapshot was not loaded: {e}") from None
    return json_response(loaded)


async def get_clock(request: Request) -> Response:
    return json_response(_emulator(request).clock.describe())


async def advance_clock(request: Request) -> Response:
    body = await json_object(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise BadRequest("'seconds' is required: a number of seconds to move the clock forward.")
    clock = _emulator(request).clock
    try:
        clock.advance(seconds)
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return json_response(clock.describe())


async def reset_clock(request: Request) -> Response:
    clock = _emulator(request).clock
    clock.reset()
    return json_response(clock.describe())


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/reset", reset, methods=["POST"]),
    Route("/accounts", fresh_account, methods=["POST"]),
    Route("/snapshot", get_snapshot, methods=["GET"]),
    Route("/snapshot", put_snapshot, methods=["PUT"]),
    Route("/clock", get_clock, methods=["GET"]),
    Route("/clock/advance", advance_clock, methods=["POST"]),
    Route("/clock/reset", reset_clock, methods=["POST"]),
]


class OperatorGate:
    """Lets a request into the control plane only with the operator token (compared in constant time)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            expected = app_state(request).settings.admin_token
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if not (expected and scheme.lower() == "bearer"
                    and hmac.compare_digest(token.strip().encode(), expected.encode())):
                await error_response(OperatorTokenRequired())(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount(extra_routes=()) -> Mount:
    """The control plane's mount (added to the app in emulator mode only)."""
    return Mount(PREFIX, app=OperatorGate(Router([*routes, *extra_routes])))
