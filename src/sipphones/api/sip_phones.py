"""Both SIP phone endpoint sets: legacy ``/v2/sip_phones`` and current ``/v2/sip_phones/phones``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.endpoint import Caller, int_param, json_body, zoom_endpoint
from sipphones.api.responses import empty_response, json_response
from sipphones.api.shapes import (
    current_fields, current_label, current_phone, legacy_fields, legacy_phone,
)
from sipphones.api.state import app_state
from sipphones.auth.scopes import Operation
from sipphones.errors import FieldError
from sipphones.phones import rules
from sipphones.phones.service import MAX_PAGE_SIZE
from sipphones.phones.validation import validate_phone_fields
from sipphones.ratelimit.policy import Label

LEGACY_CREATE_REQUIRED = (  # the seed document: voice_mail is required
    "authorization_name", "domain", "password", "proxy_server", "register_server", "user_email", "user_name",
    "voice_mail",
)
LEGACY_UPDATE_REQUIRED = (  # Zoom's extract marks these required on the legacy PATCH
    "authorization_name", "domain", "password", "proxy_server", "proxy_server2", "proxy_server3",
    "register_server", "register_server2", "register_server3", "user_name", "voice_mail",
)
CURRENT_CREATE_REQUIRED = ("authorization_name", "domain", "password", "register_server", "user_email", "user_name")


def _phones(request: Request):
    return app_state(request).phones


def _require_integration(request: Request, caller: Caller, *, legacy: bool) -> None:
    """The account switch is checked before the request is read: with the integration off every
    SIP phone call answers code 200, whatever its body or query holds (as Zoom does)."""
    _phones(request).require_integration(caller.account, legacy)


# --- legacy ---------------------------------------------------------------------------------

@zoom_endpoint(Operation.LIST, Label.MEDIUM)
async def legacy_list(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=True)
    q = request.query_params
    result = await _phones(request).list(
        caller.account, legacy=True, search=q.get("search_key"),
        page_size=int_param(request, "page_size", maximum=MAX_PAGE_SIZE),
        next_page_token=q.get("next_page_token") or None, page_number=int_param(request, "page_number"),
        rendered=app_state(request).legacy_items,
    )
    total = result.total_records
    return json_response({
        "next_page_token": result.next_page_token,
        "page_count": (total + result.page_size - 1) // result.page_size,
        "page_number": result.page_number,
        "page_size": result.page_size,
        "total_records": total,
        "phones": result.phones,
    })


@zoom_endpoint(Operation.CREATE, Label.LIGHT)
async def legacy_create(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=True)
    body = await json_body(request)
    changes, email = validate_phone_fields(legacy_fields(body), required=LEGACY_CREATE_REQUIRED)
    phone = await _phones(request).create(caller.account, changes, email, legacy=True)
    return json_response(legacy_phone(phone), 201)


@zoom_endpoint(Operation.UPDATE, Label.LIGHT)
async def legacy_update(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=True)
    body = await json_body(request)
    fields = legacy_fields(body)
    fields.pop("user_email", None)  # not part of the PATCH body: a phone's owner never changes
    changes, _ = validate_phone_fields(fields, required=LEGACY_UPDATE_REQUIRED)
    await _phones(request).update(caller.account, request.path_params["phone_id"], changes, legacy=True)
    return empty_response(204)


@zoom_endpoint(Operation.DELETE, Label.LIGHT)
async def legacy_delete(request: Request, caller: Caller) -> Response:
    await _phones(request).delete(caller.account, request.path_params["phone_id"], legacy=True)
    return empty_response(204)


# --- current --------------------------------------------------------------------------------

@zoom_endpoint(Operation.LIST, Label.MEDIUM)
async def current_list(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=False)
    q = request.query_params
    result = await _phones(request).list(
        caller.account, legacy=False, search=q.get("search_key"),
        page_size=int_param(request, "page_size", maximum=MAX_PAGE_SIZE),
        next_page_token=q.get("next_page_token") or None, rendered=app_state(request).current_items,
    )
    return json_response({
        "next_page_token": result.next_page_token,
        "page_size": result.page_size,
        "phones": result.phones,
    })


@zoom_endpoint(Operation.CREATE, Label.LIGHT)
async def current_create(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=False)
    body = await json_body(request)
    fields, errors = current_fields(body)
    required = CURRENT_CREATE_REQUIRED
    if body.get("server") is None:  # name the missing object, not its inner field
        errors.append(FieldError("server", "Required field is missing."))
    if not isinstance(body.get("server"), dict):  # already reported as "server"
        required = tuple(name for name in required if name != "register_server")
    changes, email = validate_phone_fields(
        fields, required=required, label=current_label, email_suffixes=rules.CURRENT_SUFFIXES, errors=errors,
    )
    phone = await _phones(request).create(caller.account, changes, email, legacy=False, label=current_label,
                                          email_suffixes=rules.CURRENT_SUFFIXES)
    return json_response(current_phone(phone), 201)


@zoom_endpoint(Operation.UPDATE, Label.LIGHT)
async def current_update(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=False)
    body = await json_body(request)
    fields, errors = current_fields(body)
    fields.pop("user_email", None)
    changes, _ = validate_phone_fields(fields, label=current_label, errors=errors)
    await _phones(request).update(caller.account, request.path_params["phone_id"], changes, legacy=False,
                                  label=current_label)
    return empty_response(204)


@zoom_endpoint(Operation.DELETE, Label.LIGHT)
async def current_delete(request: Request, caller: Caller) -> Response:
    await _phones(request).delete(caller.account, request.path_params["phone_id"], legacy=False)
    return empty_response(204)


routes = [
    Route("/v2/sip_phones", legacy_list, methods=["GET"]),
    Route("/v2/sip_phones", legacy_create, methods=["POST"]),
    Route("/v2/sip_phones/phones", current_list, methods=["GET"]),
    Route("/v2/sip_phones/phones", current_create, methods=["POST"]),
    Route("/v2/sip_phones/phones/{phone_id}", current_update, methods=["PATCH"]),
    Route("/v2/sip_phones/phones/{phone_id}", current_delete, methods=["DELETE"]),
    Route("/v2/sip_phones/{phone_id}", legacy_update, methods=["PATCH"]),
    Route("/v2/sip_phones/{phone_id}", legacy_delete, methods=["DELETE"]),
]
