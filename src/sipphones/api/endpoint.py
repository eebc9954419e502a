"""The wrapper every Zoom endpoint goes through: token, rate limit, scopes, errors.

Order of checks (as Zoom answers): a missing/invalid/expired token is 401 code 124; then the
account's rate limit for the endpoint's label (429); then the token's scopes (code 4711) and the
app's role permission (403, 3306/3336). Any ZoomError raised by the handler becomes Zoom's body;
anything else becomes a Zoom-shaped 500 and is logged without request data.
"""

from __future__ import annotations

import functools
import re
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from sipphones.accounts.models import Account
from sipphones.api.body import read_body
from sipphones.api.responses import error_response
from sipphones.api.state import app_state
from sipphones.auth.scopes import REQUIREMENTS, Operation
from sipphones.auth.tokens import TokenClaims
from sipphones.errors import (
    BadRequest, ClientGone, FieldError, InternalError, InvalidAccessToken, MissingScopes, NoPermission, ValidationFailed,
    ZoomError,
)
from sipphones.ratelimit.policy import Label

log = logging.getLogger("sipphones.api")


@dataclass(frozen=True)
class Caller:
    account: Account
    claims: TokenClaims


Handler = Callable[[Request, Caller], Awaitable[Response]]


async def authenticate(request: Request) -> Caller:
    state = app_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidAccessToken()
    claims = state.tokens.verify(token.strip())
    if claims.user_id or claims.grant_id:   # a user-managed app's token: its grant must be active
        account = await state.repo.get_active_grant_account(claims.grant_id, claims.client_id, claims.account_id,
                                                            claims.user_id)
    else:
        account = await state.repo.get_active_app_account(claims.client_id, claims.account_id)
    if account is None:
        raise InvalidAccessToken()  # the account or the app is gone (or disabled): its tokens die with it
    return Caller(account, claims)


def authorize(claims: TokenClaims, operation: Operation) -> None:
    req = REQUIREMENTS[operation]
    if not claims.scopes.intersection(req.scopes):
        raise MissingScopes(list(req.scopes))
    if req.permission and req.permission not in claims.permissions:
        raise NoPermission(req.forbidden_code)


def zoom_endpoint(operation: Operation, label: Label) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: Handler):
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            limit_headers: dict[str, str] = {}
            try:
                caller = await authenticate(request)
                outcome = await app_state(request).limiter.hit(caller.account, label)
                limit_headers = outcome.headers
                authorize(caller.claims, operation)
                response = await handler(request, caller)
                if limit_headers:
                    response.headers.update(limit_headers)
                return response
            except ZoomError as e:
                return error_response(e, limit_headers)
            except ClientDisconnect:  # the client went away mid-request: nothing to answer, nothing wrong here
                log.debug("client disconnected during %s %s", request.method, request.url.path)
                return error_response(ClientGone())
            except Exception:  # noqa: BLE001 - last line of defence: never a framework error body
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return error_response(InternalError(), limit_headers)

        return endpoint

    return wrap


async def json_body(request: Request) -> dict:
    raw = await read_body(request, app_state(request).settings.http_max_body_bytes)
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("Request Body should be a valid JSON object.")
    return body


# Query integers are bounded so that no value reaches the database as an out-of-range number
# (page_number * page_size becomes an OFFSET).
MAX_QUERY_INT = 2**31 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


def int_param(request: Request, name: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    """An integer query parameter; absent or empty is None. ``maximum`` clamps (Zoom's page_size
    rule: a larger page is served at the maximum); beyond MAX_QUERY_INT the value is refused."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    raw = raw.strip()
    if not _INTEGER.fullmatch(raw):
        raise ValidationFailed([FieldError(name, "Must be an integer.")])
    if len(raw) > 40:  # beyond every bound here (and int() of thousands of digits is refused)
        value = -(10**40) if raw.startswith("-") else 10**40
    else:
        value = int(raw)
    if value < minimum:
        raise ValidationFailed([FieldError(name, f"Must be at least {minimum}.")])
    if maximum is not None:
        return min(value, maximum)
    if value > MAX_QUERY_INT:
        raise ValidationFailed([FieldError(name, f"Must be at most {MAX_QUERY_INT}.")])
    return value
