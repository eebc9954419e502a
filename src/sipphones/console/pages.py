"""What every console view shares: templates, the signed-in context, forms read within limits,
CSRF checks, and the headers of every page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sipphones.accounts.models import Account
from sipphones.api.body import read_body
from sipphones.api.state import AppState, app_state
from sipphones.auth.scopes import Operation
from sipphones.console.session import COOKIE, Session, SessionCodec, clear_cookie
from sipphones.errors import PayloadTooLarge

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 64 * 1024          # a phone or user form
MAX_FORM_FIELDS = 64

# Nothing from another host; no inline script or style.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store", "X-Frame-Options": "DENY"}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True, auto_reload=False)

# Messages a redirect may ask a page to show (by key: nothing from the URL is shown as text).
NOTICES = {
    "created": "The phone was created.",
    "updated": "The phone was saved.",
    "deleted": "The phone was deleted.",
    "user_added": "The user was added.",
    "signed_out": "You are signed out.",
}


def state(request: Request) -> AppState:
    return app_state(request)


_codecs: dict[int, SessionCodec] = {}


def codec(request: Request) -> SessionCodec:
    st = state(request)
    c = _codecs.get(id(st))
    if c is None:
        c = _codecs[id(st)] = SessionCodec(st.console_key)
    return c


@dataclass(frozen=True)
class Admin:
    """The signed-in administrator of a request: the session and its account."""

    session: Session
    account: Account

    def can(self, operation: Operation) -> bool:
        return self.session.can(operation)


class SignInNeeded(Exception):
    pass


async def admin_of(request: Request) -> Admin | None:
    session = codec(request).load(request.cookies.get(COOKIE))
    if session is None:
        return None
    account = await state(request).repo.get_active_app_account(session.client_id, session.account_id)
    if account is None:  # the app or the account is gone or disabled: the session ends with it
        return None
    return Admin(session, account)


def to_sign_in(request: Request) -> Response:
    response = RedirectResponse("/console/signin", status_code=303)
    if COOKIE in request.cookies:
        clear_cookie(response, request, COOKIE)
    return response


def render(request: Request, name: str, admin: Admin | None = None, status: int = 200, **context: Any) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = templates.get_template(name).render(
        admin=admin, csrf=admin.session.csrf if admin else context.pop("csrf", ""), notice=notice,
        Operation=Operation, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def refused(request: Request, admin: Admin | None, message: str, status: int = 403) -> HTMLResponse:
    return render(request, "refused.html", admin, status=status, message=message)


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> FormData:
    """The request's form (urlencoded or multipart), read whole within ``limit`` bytes first."""
    body = await read_body(request, limit)
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=limit)


def text(form: FormData, name: str, limit: int = 4096) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def checked_form(request: Request, admin: Admin, limit: int = MAX_FORM_BYTES) -> FormData | Response:
    """The form of a POST, or the refusal when it is too large or its CSRF token is not the session's."""
    try:
        form = await read_form(request, limit)
    except PayloadTooLarge:
        return refused(request, admin, f"The form is too large (at most {limit // 1024} KiB).", 413)
    if not admin.session.csrf_ok(text(form, "csrf")):
        return refused(request, admin, "The form has expired or did not come from this console: reload the page "
                                       "and send it again.", 403)
    return form
