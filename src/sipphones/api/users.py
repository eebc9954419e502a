"""A Zoom-shaped subset of the Users API: enough for API-only clients to set up their users."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.accounts.models import User
from sipphones.api.endpoint import Caller, authorize, int_param, json_body, zoom_endpoint
from sipphones.api.responses import empty_response, json_response
from sipphones.api.state import app_state
from sipphones.auth.scopes import Operation
from sipphones.accounts.service import NotFoundError
from sipphones.errors import AccountNotFound, FieldError, UserNotFound, ValidationFailed
from sipphones.ratelimit.policy import Label


def user_shape(user: User) -> dict:
    return {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "display_name": user.display_name or user.email,
        "email": user.email,
        "type": user.type,
        "status": user.status,
        "user_created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(user.created_at)),
    }


@zoom_endpoint(Operation.USERS_READ, Label.MEDIUM)
async def list_users(request: Request, caller: Caller) -> Response:
    state = app_state(request)
    size = int_param(request, "page_size", maximum=300) or 30
    token = request.query_params.get("next_page_token") or None
    after, number, now = None, 1, state.page_tokens.clock()
    if token:
        cursor = state.page_tokens.read(token, account_id=caller.account.id, search="\x00users", now=now)
        after, number = cursor.after_id, cursor.page_number
    users, total = await state.repo.list_users(caller.account.id, after_id=after, limit=size + 1)
    more = len(users) > size
    users = users[:size]
    next_token = ""
    if more:
        next_token = state.page_tokens.issue(account_id=caller.account.id, search="\x00users",
                                             after_id=users[-1].id, page_number=number + 1, now=now)
    return json_response({
        "next_page_token": next_token,
        "page_count": (total + size - 1) // size,
        "page_number": number,
        "page_size": size,
        "total_records": total,
        "users": [user_shape(u) for u in users],
    })


@zoom_endpoint(Operation.USERS_WRITE, Label.LIGHT)
async def create_user(request: Request, caller: Caller) -> Response:
    body = await json_body(request)
    action = body.get("action")
    info = body.get("user_info")
    errors = []
    if action not in ("create", "autoCreate", "custCreate", "ssoCreate"):
        errors.append(FieldError("action", "Must be one of create, autoCreate, custCreate, ssoCreate."))
    if not isinstance(info, dict):
        errors.append(FieldError("user_info", "Required field is missing."))
        raise ValidationFailed(errors)
    email, first, last, utype = info.get("email"), info.get("first_name", ""), info.get("last_name", ""), info.get("type", 1)
    if not isinstance(email, str):
        errors.append(FieldError("user_info.email", "Required field is missing."))
    for name, value in (("first_name", first), ("last_name", last)):
        if not isinstance(value, str):
            errors.append(FieldError(f"user_info.{name}", "Must be a string."))
    if isinstance(utype, bool) or not isinstance(utype, int):
        errors.append(FieldError("user_info.type", "Must be an integer."))
    if errors:
        raise ValidationFailed(errors)
    try:
        user = await app_state(request).accounts.create_user(caller.account.id, email, first, last, utype)
    except ValidationFailed as e:
        raise ValidationFailed([FieldError(f"user_info.{err.field}", err.message) for err in e.errors]) from None
    except NotFoundError:  # the account was deleted after this request's token check
        raise AccountNotFound(caller.account.id) from None
    return json_response({"id": user.id, "first_name": user.first_name, "last_name": user.last_name,
                          "email": user.email, "type": user.type}, 201)


@zoom_endpoint(Operation.USER_SELF, Label.LIGHT)
async def get_user(request: Request, caller: Caller) -> Response:
    """Zoom's "Get a user": ``me`` is the user a user-managed app's token acts as (an account-level
    token has none); an id or email reaches another user only with the admin scope and User:Read."""
    ref, claims, repo = request.path_params["user_id"], caller.claims, app_state(request).repo
    account_id = caller.account.id
    if ref == "me":
        user = await repo.get_user(account_id, claims.user_id) if claims.user_id else None
    else:
        user = await repo.get_user(account_id, ref) or await repo.get_user_by_email(account_id, ref)
    if user is None or user.id != claims.user_id:
        authorize(claims, Operation.USER_GET)
    if user is None:
        raise UserNotFound(ref)
    return json_response(dict(user_shape(user), account_id=user.account_id))


@zoom_endpoint(Operation.USERS_WRITE, Label.LIGHT)
async def delete_user(request: Request, caller: Caller) -> Response:
    await app_state(request).accounts.delete_user(caller.account.id, request.path_params["user_id"])
    return empty_response(204)


routes = [
    Route("/v2/users", list_users, methods=["GET"]),
    Route("/v2/users", create_user, methods=["POST"]),
    Route("/v2/users/{user_id}", get_user, methods=["GET"]),
    Route("/v2/users/{user_id}", delete_user, methods=["DELETE"]),
]
