"""HTTP extension (not part of Zoom's API): each phone's registration status, as the monitor records it.

``GET /_sipphones/v1/sip_phones/status[?state=failed,invalid][&page_size=N][&next_page_token=T]``

Like the check next to it (``api/check.py``), this service's own (``/_sipphones/`` prefix) and
Zoom-shaped otherwise: the same bearer token, the scopes and permission of listing phones
(``sip_phone:read:admin`` or the granular ``sip_phone:read:list_sip_phones:admin``, and
``SipPhone:Read``: 400 code 4711 without the scope, 403 code 3306 without the permission), the
account's rate limit with the lists' label (*Medium*), Zoom's error bodies, and only the
account's own phones.

The answer is one page (``page_size`` 1-300, default 30; ``next_page_token`` as the phone lists
issue them) of the account's phones in id order, each with what ``sipphones monitor`` last
wrote for it (``phones.status``): ``state`` (``unknown`` for a phone no monitor has written),
the server set and address and the transport in use, the last error and SIP status, the last
success and attempt, the granted expiry, when the row was written, and which monitor keeps the
phone (``monitor``: its ``host:pid``, ``""`` for none; ``monitor_alive``: false once that
monitor's lease ran out, until another takes the phone over). Times are ISO-8601 UTC.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.check import PREFIX
from sipphones.api.endpoint import Caller, int_param, zoom_endpoint
from sipphones.api.responses import json_response
from sipphones.api.state import app_state
from sipphones.auth.scopes import Operation
from sipphones.phones.service import MAX_PAGE_SIZE
from sipphones.phones.status import UNKNOWN_STATE, PhoneStatusService, parse_states
from sipphones.ratelimit.policy import Label
from sipphones.repository import PhoneStatusEntry

__all__ = ["routes", "list_statuses_endpoint", "status_item"]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_item(entry: PhoneStatusEntry) -> dict:
    """One phone of the listing (every field present: empty strings and nulls when unknown)."""
    s = entry.status
    keeper = {"monitor": entry.keeper, "monitor_alive": entry.keeper_alive}
    if s is None:
        return {"phone_id": entry.phone_id, "user_email": entry.user_email, "state": UNKNOWN_STATE,
                "registered": False, "server_slot": None, "server_address": "", "transport": "", "last_error": "",
                "last_status_code": None, "last_success_at": None, "last_attempt_at": None,
                "granted_expires": None, "updated_at": None, **keeper}
    return {"phone_id": entry.phone_id, "user_email": entry.user_email, "state": s.state,
            "registered": bool(s.registered), "server_slot": s.server_slot, "server_address": s.server_address,
            "transport": s.transport, "last_error": s.last_error, "last_status_code": s.last_status_code,
            "last_success_at": _iso(s.last_success_at), "last_attempt_at": _iso(s.last_attempt_at),
            "granted_expires": s.granted_expires, "updated_at": _iso(s.updated_at), **keeper}


@zoom_endpoint(Operation.LIST, Label.MEDIUM)
async def list_statuses_endpoint(request: Request, caller: Caller) -> Response:
    state = app_state(request)
    q = request.query_params
    result = await PhoneStatusService(state.repo, state.page_tokens).list(
        caller.account, states=parse_states(q.get("state")),
        page_size=int_param(request, "page_size", maximum=MAX_PAGE_SIZE),
        next_page_token=q.get("next_page_token") or None,
    )
    return json_response({
        "next_page_token": result.next_page_token,
        "page_size": result.page_size,
        "phones": [status_item(e) for e in result.phones],
    })


routes = [
    Route(PREFIX + "/sip_phones/status", list_statuses_endpoint, methods=["GET"]),
]
