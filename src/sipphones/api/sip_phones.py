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
from sipphones.phones import fields, rules
from sipphones.phones.service import MAX_PAGE_SIZE
from sipphones.phones.validation import validate_phone_fields
from sipphones.ratelimit.policy import Label

# Which fields each request must carry: the table (``phones.fields``) says.
LEGACY_CREATE_REQUIRED = fields.LEGACY_CREATE_REQUIRED
LEGACY_UPDATE_REQUIRED = fields.LEGACY_UPDATE_REQUIRED
CURRENT_CREATE_REQUIRED = fields.CURRENT_CREATE_REQUIRED
CURRENT_UPDATE_REQUIRED = fields.CURRENT_UPDATE_REQUIRED


def _updatable(flat: dict) -> dict:
    """A PATCH body without what a PATCH never changes (``user_email``: a phone's owner; a client
    may send a listed record back)."""
    for name in fields.NOT_UPDATABLE:
        flat.pop(name, None)
    return flat


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
    flat = _updatable(legacy_fields(body))
    changes, _ = validate_phone_fields(flat, required=LEGACY_UPDATE_REQUIRED)
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
    flat, errors = current_fields(body)
    required = CURRENT_CREATE_REQUIRED
    if body.get("server") is None:  # name the missing object, not its inner field
        errors.append(FieldError("server", "Required field is missing."))
    if not isinstance(body.get("server"), dict):  # already reported as "server"
        required = tuple(name for name in required if name != "register_server")
    changes, email = validate_phone_fields(
        flat, required=required, label=current_label, email_suffixes=rules.CURRENT_SUFFIXES, errors=errors,
    )
    phone = await _phones(request).create(caller.account, changes, email, legacy=False, label=current_label,
                                          email_suffixes=rules.CURRENT_SUFFIXES)
    return json_response(current_phone(phone), 201)


@zoom_endpoint(Operation.UPDATE, Label.LIGHT)
async def current_update(request: Request, caller: Caller) -> Response:
    _require_integration(request, caller, legacy=False)
    body = await json_body(request)
    flat, errors = current_fields(body)
    changes, _ = validate_phone_fields(_updatable(flat), required=CURRENT_UPDATE_REQUIRED, label=current_label,
                                       errors=errors)
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
