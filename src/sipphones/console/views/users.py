"""The account's users: a list (paged) and a form to add one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sipphones.auth.scopes import Operation
from sipphones.console.pages import admin_of, checked_form, refused, render, state, text, to_sign_in
from sipphones.errors import UserAlreadyExists, ValidationFailed

PAGE_SIZE = 50
MAX_ID = 64


async def _page(request: Request, admin, *, values=None, errors=None, status=200) -> Response:
    after = request.query_params.get("after", "")[:MAX_ID] or None
    users, total = await state(request).repo.list_users(admin.account.id, after_id=after, limit=PAGE_SIZE + 1)
    more = len(users) > PAGE_SIZE
    users = users[:PAGE_SIZE]
    return render(request, "users.html", admin, status=status, users=users, total=total,
                  next_after=users[-1].id if more else "", first_page=after is None, values=values or {},
                  errors=errors or {})


async def user_list(request: Request) -> Response:
    admin = await admin_of(request)
    if admin is None:
        return to_sign_in(request)
    if not admin.can(Operation.USERS_READ):
        return refused(request, admin, "The app you signed in with may not list users.")
    return await _page(request, admin)


async def add_user(request: Request) -> Response:
    admin = await admin_of(request)
    if admin is None:
        return to_sign_in(request)
    if not admin.can(Operation.USERS_WRITE):
        return refused(request, admin, "The app you signed in with may not add users.")
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    values = {name: text(form, name, 320) for name in ("email", "first_name", "last_name")}
    try:
        await state(request).accounts.create_user(admin.account.id, values["email"], values["first_name"],
                                                  values["last_name"])
    except ValidationFailed as e:
        errors = {err.field: err.message for err in e.errors}
        if admin.can(Operation.USERS_READ):
            return await _page(request, admin, values=values, errors=errors, status=400)
        return refused(request, admin, " ".join(errors.values()), 400)
    except UserAlreadyExists as e:
        if admin.can(Operation.USERS_READ):
            return await _page(request, admin, values=values, errors={"email": e.message}, status=400)
        return refused(request, admin, e.message, 400)
    return RedirectResponse("/console/users?notice=user_added", status_code=303)
