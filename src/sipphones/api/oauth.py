"""``POST /oauth/token``: Server-to-Server OAuth (grant_type=account_credentials) and the grants of
user-managed apps (authorization_code, refresh_token; ``auth.user_oauth``)."""

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
from sipphones.errors import ClientGone, InternalError, OAuthError, ZoomError

log = logging.getLogger("sipphones.api")


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """The client id and secret of a Basic ``Authorization`` header; None without one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if not scheme and not value:
        return None
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


def client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str | None]:
    """The client id and secret of a token or revoke request: the Basic header (Zoom's way), or
    ``client_id`` (and ``client_secret``) in the form. No secret: a public client (PKCE)."""
    basic = _basic_credentials(request)
    if basic is not None:
        return basic
    client_id = params.get("client_id", "")
    if not client_id:
        raise OAuthError(4706, "Client ID or client secret is missing.")
    return client_id, params.get("client_secret") or None


async def oauth_params(request: Request) -> dict[str, str]:
    """The query string and, for a form body, its fields (within a small limit), first value each."""
    params = {k: v for k, v in request.query_params.items()}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        raw = await read_body(request, app_state(request).settings.http_max_form_bytes)
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k: v[0] for k, v in form.items() if v})
    return params


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


async def _grant(request: Request) -> dict:
    state = app_state(request)
    params = await oauth_params(request)
    basic = _basic_credentials(request)   # the client first, as Zoom checks (4706 before 4705)
    if basic is None and not params.get("client_id"):
        raise OAuthError(4706, "Client ID or client secret is missing.")
    grant = params.get("grant_type", "")
    if not grant:
        raise OAuthError(4706, "Missing grant type.")
    if grant == "account_credentials":
        if basic is None:
            raise OAuthError(4706, "Client ID or client secret is missing.")
        account_id = params.get("account_id", "")
        if not account_id:
            raise OAuthError(4700, "Missing account_id.")
        access_token, claims = await state.accounts.grant_account_credentials(
            state.tokens, client_id=basic[0], client_secret=basic[1], account_id=account_id)
        refresh_token = None
    elif grant in ("authorization_code", "refresh_token"):
        app = await state.user_oauth.client(*client_credentials(request, params))
        if grant == "authorization_code":
            issued = await state.user_oauth.exchange_code(app, code=params.get("code", ""),
                                                          redirect_uri=params.get("redirect_uri", ""),
                                                          verifier=params.get("code_verifier", ""))
        else:
            issued = await state.user_oauth.refresh(app, params.get("refresh_token", ""))
        access_token, claims, refresh_token = issued.access_token, issued.claims, issued.refresh_token
    else:
        raise OAuthError(4705, "Grant type is not supported from token endpoint.")
    body = {"access_token": access_token, "token_type": "bearer"}
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    body.update({
        "expires_in": claims.expires_at - claims.issued_at,
        "scope": " ".join(sorted(claims.scopes)),
        "api_url": state.settings.api_url or _local_url(request),
    })
    return body


async def token(request: Request) -> Response:
    try:
        return json_response(await _grant(request))
    except ZoomError as e:
        return error_response(e)
    except ClientDisconnect:  # the client went away mid-body: nothing to answer, nothing wrong here
        log.debug("client disconnected during POST /oauth/token")
        return error_response(ClientGone())
    except Exception:  # noqa: BLE001
        log.exception("unexpected error in POST /oauth/token")
        return error_response(InternalError())


routes = [Route("/oauth/token", token, methods=["POST"])]
