"""Sign-in and sign-out."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sipphones.console.pages import admin_of, codec, read_form, refused, render, state, text, to_sign_in
from sipphones.console.session import (
    COOKIE, PRE_COOKIE, PRE_TTL, SESSION_TTL, Session, clear_cookie, new_csrf, set_cookie,
)
from sipphones.console.signin import SignInRefused, SignInThrottle, sign_in
from sipphones.errors import PayloadTooLarge

SIGN_IN_FORM_BYTES = 4096
throttle = SignInThrottle()


async def root(request: Request) -> Response:
    return RedirectResponse("/console/phones", status_code=302)


def _sign_in_page(request: Request, *, error: str = "", values: dict | None = None, status: int = 200) -> Response:
    csrf = new_csrf()
    response = render(request, "signin.html", None, status=status, csrf=csrf, error=error, values=values or {})
    set_cookie(response, request, PRE_COOKIE, codec(request).dump_pre(csrf), PRE_TTL)
    return response


async def sign_in_form(request: Request) -> Response:
    if await admin_of(request) is not None:
        return RedirectResponse("/console/phones", status_code=303)
    return _sign_in_page(request)


async def sign_in_post(request: Request) -> Response:
    try:
        form = await read_form(request, SIGN_IN_FORM_BYTES)
    except PayloadTooLarge:
        return refused(request, None, "The form is too large.", 413)
    expected = codec(request).load_pre(request.cookies.get(PRE_COOKIE))
    sent = text(form, "csrf")
    if expected is None or not sent or not _same(expected, sent):
        return refused(request, None, "The sign-in form has expired or did not come from this console: reload "
                                      "the page and sign in again.", 403)
    values = {"account_id": text(form, "account_id", 256), "client_id": text(form, "client_id", 256)}
    st = state(request)
    try:
        who = await sign_in(st.accounts, st.tokens, throttle, account_id=values["account_id"],
                            client_id=values["client_id"], client_secret=text(form, "client_secret", 256))
    except SignInRefused as e:
        return _sign_in_page(request, error=str(e), values=values, status=401)
    session = Session(who.account_id, who.client_id, who.scopes, who.permissions, new_csrf(), time.time())
    response = RedirectResponse("/console/phones", status_code=303)
    set_cookie(response, request, COOKIE, codec(request).dump(session), SESSION_TTL)
    clear_cookie(response, request, PRE_COOKIE)
    return response


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


async def sign_out(request: Request) -> Response:
    admin = await admin_of(request)
    if admin is None:
        return to_sign_in(request)
    try:
        form = await read_form(request, SIGN_IN_FORM_BYTES)
    except PayloadTooLarge:
        return refused(request, admin, "The form is too large.", 413)
    if not admin.session.csrf_ok(text(form, "csrf")):
        return refused(request, admin, "The form has expired or did not come from this console: reload the page "
                                       "and send it again.", 403)
    response = RedirectResponse("/console/signin?notice=signed_out", status_code=303)
    clear_cookie(response, request, COOKIE)
    return response
