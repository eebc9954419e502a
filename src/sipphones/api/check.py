"""HTTP extension (not part of Zoom's API): run ``sipphones check`` on one phone over HTTP.

``POST /_sipphones/v1/sip_phones/{phoneId}/check[?timeout=SECONDS]``

The ``/_sipphones/`` prefix marks it as this service's own: Zoom's namespace (``/v2/...``) is
left exactly as Zoom defines it, so a client written against Zoom never meets a route Zoom does
not have. Everything else behaves like the Zoom endpoints next to it: the same bearer token,
the scopes and permission of updating the phone (``sip_phone:write:admin`` or the granular
``sip_phone:update:sip_phone:admin``, and the role permission ``SipPhone:Edit``: 400 code 4711
without the scope, 403 code 3336 without the permission), the account's rate limit
(the *Heavy* label: a check holds sockets for up to a few seconds), Zoom-shaped errors
(``{"code", "message"}``), and a phone of another account is indistinguishable from a
missing one (404, code 2305). Why a write scope: the check sends REGISTERs from this server with
the phone's credentials to the servers stored with it; a read-only token may see a phone, not
make the server act with its secrets.

The answer is the check report of ``sipphones check --json`` for that phone (one element of
its ``phones`` array, see ``sipphones.check.models.CheckReport.to_dict``), with HTTP 200 whether
or not the phone registered: the check ran, its outcome is in the body (``ok``).

TLS registrars are verified against the system's CAs, or the PEM bundle named by the
``SIPPHONES_SIP_CA_FILE`` environment variable. At most ``MAX_CONCURRENT_CHECKS`` checks run
at once per server process; the others wait their turn.
"""

from __future__ import annotations

import asyncio
import os

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.endpoint import Caller, zoom_endpoint
from sipphones.api.responses import json_response
from sipphones.api.state import app_state
from sipphones.auth.scopes import Operation
from sipphones.errors import FieldError, PhoneNotFound, ValidationFailed
from sipphones.phones.service import PhoneService
from sipphones.ratelimit.policy import Label

__all__ = ["PREFIX", "routes", "check_phone_endpoint", "check_slots", "MAX_CONCURRENT_CHECKS"]

PREFIX = "/_sipphones/v1"
MAX_CONCURRENT_CHECKS = 20
TIMEOUT_MIN, TIMEOUT_MAX, TIMEOUT_DEFAULT = 0.1, 30.0, 5.0

_slots: asyncio.Semaphore | None = None


def check_slots() -> asyncio.Semaphore:
    """The process's registration checks at once (the API's and the console's together)."""
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
    return _slots


def _timeout(request: Request) -> float:
    raw = request.query_params.get("timeout")
    if raw is None or raw == "":
        return TIMEOUT_DEFAULT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (TIMEOUT_MIN <= value <= TIMEOUT_MAX):
        raise ValidationFailed([FieldError("timeout", f"Must be a number of seconds from {TIMEOUT_MIN} to "
                                                      f"{TIMEOUT_MAX:g}.")])
    return value


@zoom_endpoint(Operation.CHECK, Label.HEAVY)
async def check_phone_endpoint(request: Request, caller: Caller) -> Response:
    from sipphones.check.service import CheckOptions, check_phone

    PhoneService.require_integration(caller.account, legacy=False)
    phone_id = request.path_params["phone_id"]
    budget = _timeout(request)
    phone = await app_state(request).repo.get_phone(caller.account.id, phone_id)
    if phone is None:
        raise PhoneNotFound(phone_id)
    options = CheckOptions(server_budget=budget, ca_file=os.environ.get("SIPPHONES_SIP_CA_FILE") or None)
    async with check_slots():
        report = await check_phone(phone, options)
    return json_response(report.to_dict())


routes = [
    Route(PREFIX + "/sip_phones/{phone_id}/check", check_phone_endpoint, methods=["POST"]),
]
