"""``POST /oauth/token``: Server-to-Server OAuth (grant_type=account_credentials)."""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.body import read_body
from sipphones.api.responses import error_response, json_response
from sipphones.api.state import app_state
from sipphones.api.endpoint import outages
from sipphones.errors import ClientGone, DatabaseUnavailable, InternalError, OAuthError, ZoomError
from sipphones.repository import StoreUnavailable

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


def _local_url(request: Request) -> str:
    """The address the client reached (the listening socket's), never the client's ``Host`` header."""
    server = request.scope.get("server")
    if not server:
        return ""
    host, port = server[0], server[1]
    if ":" in host:
        host = f"[{host}]"
    scheme = request.scope.get("scheme", "http")
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


async def token(request: Request) -> Response:
    try:
        client_id, secret = _client_credentials(request)
        state = app_state(request)
        params = {k: v for k, v in request.query_params.items()}
        ctype = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in ctype:
            # Read before the credentials are checked (account_id may be in it): within a small limit.
            raw = await read_body(request, state.settings.http_max_form_bytes)
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({k: v[0] for k, v in form.items() if v})
        grant = params.get("grant_type", "")
        if not grant:
            raise OAuthError(4706, "Missing grant type.")
        if grant != "account_credentials":
            raise OAuthError(4705, "Grant type is not supported from token endpoint.")
        account_id = params.get("account_id", "")
        if not account_id:
            raise OAuthError(4700, "Missing account_id.")
        access_token, claims = await state.accounts.grant_account_credentials(
            state.tokens, client_id=client_id, client_secret=secret, account_id=account_id)
        base = state.settings.api_url or _local_url(request)
        return json_response({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": claims.expires_at - claims.issued_at,
            "scope": " ".join(sorted(claims.scopes)),
            "api_url": base,
        })
    except ZoomError as e:
        return error_response(e)
    except StoreUnavailable as e:
        outages.seen(e)
        return error_response(DatabaseUnavailable())
    except ClientDisconnect:  # the client went away mid-body: nothing to answer, nothing wrong here
        log.debug("client disconnected during POST /oauth/token")
        return error_response(ClientGone())
    except Exception:  # noqa: BLE001
        log.exception("unexpected error in POST /oauth/token")
        return error_response(InternalError())


routes = [Route("/oauth/token", token, methods=["POST"])]
