"""The user-managed apps' side of OAuth: ``GET /oauth/authorize`` (sign-in and consent) and
``POST /oauth/revoke``. The token endpoint is ``api.oauth``; the rules are ``auth.user_oauth``.

Sign-in is the emulator's: there are no user passwords, so the user who signs in is named by the
request, ``login_hint=<email or user id>`` (a user of the app's account), and consent is given at
once: the answer is the redirect with ``code`` and ``state``. Without ``login_hint`` a minimal page
lists the account's users to choose from; ``consent=deny`` answers ``error=access_denied``.
Errors before the redirect URI is known good are answered here (never redirected, RFC 6749
4.1.2.1); later ones go back to the client as ``error``/``error_description``/``state``.
"""

from __future__ import annotations

import html
import logging
from string import Template
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sipphones.accounts.models import App
from sipphones.api.oauth import client_credentials, oauth_params
from sipphones.api.responses import error_response, json_response, tracking_id
from sipphones.api.state import app_state
from sipphones.auth import pkce
from sipphones.auth.user_oauth import MAX_STATE
from sipphones.errors import ClientGone, InternalError, OAuthError, ZoomError

log = logging.getLogger("sipphones.api")

PAGE_USERS = 100   # users the sign-in page lists
_SAFE_PAGE_HEADERS = {"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
                      "x-frame-options": "DENY", "cache-control": "no-store", "referrer-policy": "no-referrer"}

_PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to $app</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto}li{margin:.4em 0}</style></head>
<body><h1>Sign in to $app</h1>
<p>sipphones emulates Zoom's sign-in: choose the user of this account who authorizes the app
(an integration test passes <code>login_hint=&lt;email&gt;</code> and is redirected at once).</p>
<ul>$users</ul>
<p><a href="$deny">Deny access</a></p></body></html>
""")


def _redirect_to(uri: str, params: dict[str, str]) -> Response:
    parts = urlsplit(uri)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    response = RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)
    response.headers["x-zm-trackingid"] = tracking_id()
    response.headers["cache-control"] = "no-store"
    return response


def _scopes(app: App, requested: str) -> tuple[str, ...] | None:
    """The scopes the code grants: the app's, or the part of them ``scope`` asks for; None if it
    asks for one the app does not have."""
    asked = tuple(dict.fromkeys(requested.replace(",", " ").split()))
    if not asked:
        return app.scopes
    return asked if set(asked) <= set(app.scopes) else None


async def _sign_in_page(request: Request, app: App) -> Response:
    users, _ = await app_state(request).repo.list_users(app.account_id, after_id=None, limit=PAGE_USERS)
    params = dict(request.query_params)
    items = []
    for user in users:
        link = "/oauth/authorize?" + urlencode(dict(params, login_hint=user.email))
        label = user.email + (f" ({user.display_name})" if user.display_name else "")
        items.append(f'<li><a href="{html.escape(link)}">{html.escape(label)}</a></li>')
    if not items:
        items.append("<li>This account has no users: add one first.</li>")
    deny = "/oauth/authorize?" + urlencode(dict(params, consent="deny"))
    page = _PAGE.substitute(app=html.escape(app.name), users="".join(items), deny=html.escape(deny))
    return HTMLResponse(page, headers=dict(_SAFE_PAGE_HEADERS, **{"x-zm-trackingid": tracking_id()}))


async def authorize(request: Request) -> Response:
    q = request.query_params
    settings = app_state(request).settings
    if not (settings.emulator or settings.oauth_emulated_sign_in):
        # No password-less sign-in unless the operator asked for it (see config.py).
        return error_response(OAuthError(4700, "Sign-in for user-managed apps is off on this server: run it "
                                               "with --emulator or SIPPHONES_OAUTH_EMULATED_SIGN_IN=1.", status=403))
    try:
        oauth = app_state(request).user_oauth
        app = await oauth.authorizing_app(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        oauth.check_redirect(app, redirect_uri)
        state = q.get("state")
        if state is not None and len(state) > MAX_STATE:
            raise OAuthError(4700, f"state may have at most {MAX_STATE} characters.")
    except ZoomError as e:
        return error_response(e)

    def back(**params: str) -> Response:
        if state is not None:
            params["state"] = state
        return _redirect_to(redirect_uri, params)

    try:
        if q.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type must be code.")
        challenge, method = q.get("code_challenge", ""), q.get("code_challenge_method", "")
        if challenge:
            method = method or pkce.PLAIN   # Zoom and RFC 7636: plain when the method is not given
            if problem := pkce.check_challenge(challenge, method):
                return back(error="invalid_request", error_description=problem)
        elif method:
            return back(error="invalid_request", error_description="code_challenge_method without code_challenge.")
        elif app.public_client:
            return back(error="invalid_request", error_description="A public client must use PKCE: "
                                                                     "send code_challenge (S256).")
        scopes = _scopes(app, q.get("scope", ""))
        if scopes is None:
            return back(error="invalid_scope", error_description="The app does not have every scope asked for.")
        if q.get("consent") == "deny":
            return back(error="access_denied", error_description="The user denied the app access.")
        login = q.get("login_hint", "")
        if not login:
            return await _sign_in_page(request, app)
        user = await oauth.sign_in(app, login)
        if user is None:
            return error_response(OAuthError(4700, "No such user in the app's account: login_hint must be the "
                                                   "email or id of one of its users."))
        code = await oauth.issue_code(app, user, redirect_uri=redirect_uri, scopes=scopes, challenge=challenge,
                                      challenge_method=method if challenge else "")
        return back(code=code)
    except ZoomError as e:
        return error_response(e)
    except Exception:  # noqa: BLE001
        log.exception("unexpected error in GET /oauth/authorize")
        return error_response(InternalError())


async def revoke(request: Request) -> Response:
    try:
        state = app_state(request)
        params = await oauth_params(request)
        app = await state.user_oauth.client(*client_credentials(request, params))
        await state.user_oauth.revoke(app, params.get("token", ""))
        return json_response({"status": "success"})
    except ZoomError as e:
        return error_response(e)
    except ClientDisconnect:
        log.debug("client disconnected during POST /oauth/revoke")
        return error_response(ClientGone())
    except Exception:  # noqa: BLE001
        log.exception("unexpected error in POST /oauth/revoke")
        return error_response(InternalError())


routes = [
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
]
