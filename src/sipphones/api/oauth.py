"""``POST /oauth/token``: Server-to-Server OAuth (grant_type=account_credentials)."""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.responses import error_response, json_response
from sipphones.api.state import app_state
from sipphones.errors import InternalError, OAuthError, ZoomError

log = logging.getLogger("sipphones.api")


def _client_credentials(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise OAuthError(4706, "Client ID or client secret is missing.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
        client_id, sep, secret = decoded.partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(4702, "Invalid client_id or client_secret", status=401) from None
    if not sep or not client_id or not secret:
        raise OAuthError(4706, "Client ID or client secret is missing.")
    return client_id, secret


async def token(request: Request) -> Response:
    try:
        client_id, secret = _client_credentials(request)
        params = {k: v for k, v in request.query_params.items()}
        ctype = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in ctype:
            form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
            params.update({k: v[0] for k, v in form.items() if v})
        grant = params.get("grant_type", "")
        if not grant:
            raise OAuthError(4706, "Missing grant type.")
        if grant != "account_credentials":
            raise OAuthError(4705, "Grant type is not supported from token endpoint.")
        account_id = params.get("account_id", "")
        if not account_id:
            raise OAuthError(4700, "Missing account_id.")
        state = app_state(request)
        access_token, claims = await state.accounts.grant_account_credentials(
            state.tokens, client_id=client_id, client_secret=secret, account_id=account_id)
        base = str(request.base_url).rstrip("/")
        return json_response({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": claims.expires_at - claims.issued_at,
            "scope": " ".join(sorted(claims.scopes)),
            "api_url": base,
        })
    except ZoomError as e:
        return error_response(e)
    except Exception:  # noqa: BLE001
        log.exception("unexpected error in POST /oauth/token")
        return error_response(InternalError())


routes = [Route("/oauth/token", token, methods=["POST"])]
