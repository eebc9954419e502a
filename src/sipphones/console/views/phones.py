"""The phones pages: the table (search, paging, registration state, failed filter), create, edit,
delete with a confirmation, and "check now"."""

from __future__ import annotations

import os
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sipphones.api.check import TIMEOUT_DEFAULT, check_slots
from sipphones.auth.scopes import Operation
from sipphones.console import forms
from sipphones.console.pages import Admin, admin_of, checked_form, refused, render, state, to_sign_in
from sipphones.errors import DuplicatePhoneEmail, UserNotFound, ValidationFailed, ZoomError
from sipphones.phones.status import FAILED_STATES, UNKNOWN_STATE, PhoneStatusService
from sipphones.repository import PhoneRecord, PhoneStatus

PAGE_SIZE = 30
MAX_SEARCH = 256         # characters of a search
MAX_TOKEN = 2048         # characters of a page token
MAX_PHONE_ID = 64


@dataclass(frozen=True)
class Row:
    """One phone of the table."""

    id: str
    user_email: str
    user_name: str
    domain: str
    servers: tuple[tuple[str, str], ...]   # (register server, transport) of each configured set
    state: str
    last_error: str


def _servers(values) -> tuple[tuple[str, str], ...]:
    return tuple((reg, transport or "UDP") for reg, transport in values if reg)


def _row_of_record(r: PhoneRecord, status: PhoneStatus | None) -> Row:
    servers = _servers(((r.register_server, r.transport_protocol), (r.register_server2, r.transport_protocol2),
                        (r.register_server3, r.transport_protocol3)))
    return Row(r.id, r.user_email, r.user_name, r.domain, servers, status.state if status else UNKNOWN_STATE,
               status.last_error if status else "")


async def _signed_in(request: Request, operation: Operation) -> Admin | Response:
    admin = await admin_of(request)
    if admin is None:
        return to_sign_in(request)
    if not admin.can(operation):
        return refused(request, admin, "The app you signed in with may not do this (its scopes or role "
                                       "permissions do not allow it).")
    return admin


def _phone_id(request: Request) -> str:
    return request.path_params["phone_id"][:MAX_PHONE_ID]


async def phone_list(request: Request) -> Response:
    admin = await _signed_in(request, Operation.LIST)
    if isinstance(admin, Response):
        return admin
    q = request.query_params
    search = q.get("q", "")[:MAX_SEARCH]
    token = q.get("page", "")[:MAX_TOKEN] or None
    failed = q.get("failed") == "1"
    st = state(request)
    rows: list[Row] = []
    error = ""
    total = None
    next_token, number = "", 1
    try:
        if failed:
            page = await PhoneStatusService(st.repo, st.page_tokens).list(
                admin.account, states=FAILED_STATES, page_size=PAGE_SIZE, next_page_token=token)
            for entry in page.phones:
                phone = await st.repo.get_phone(admin.account.id, entry.phone_id)
                if phone is None:
                    continue
                rows.append(Row(phone.id, phone.user_email, phone.user_name, phone.domain,
                                _servers((s.register_server, s.transport_protocol.value if s.transport_protocol else "")
                                         for s in phone.servers),
                                entry.status.state if entry.status else UNKNOWN_STATE,
                                entry.status.last_error if entry.status else ""))
            next_token = page.next_page_token
        else:
            result = await st.phones.list(admin.account, legacy=True, search=search, page_size=PAGE_SIZE,
                                          next_page_token=token)
            statuses = await st.repo.get_statuses(admin.account.id, [r.id for r in result.phones])
            rows = [_row_of_record(r, statuses.get(r.id)) for r in result.phones]
            next_token, number, total = result.next_page_token, result.page_number, result.total_records
    except ZoomError as e:
        error = e.message
    return render(request, "phones.html", admin, rows=rows, search=search, failed=failed, next_token=next_token,
                  page_number=number, total=total, error=error, first_page=token is None)


def _form_page(request: Request, admin: Admin, *, phone=None, values=None, errors=None, message="", status=200):
    editing = phone is not None
    return render(request, "phone_form.html", admin, status=status, phone=phone,
                  groups=forms.EDIT_FORM if editing else forms.CREATE_FORM, values=values or {},
                  errors=errors or {}, message=message)


async def new_form(request: Request) -> Response:
    admin = await _signed_in(request, Operation.CREATE)
    if isinstance(admin, Response):
        return admin
    return _form_page(request, admin)


async def create(request: Request) -> Response:
    admin = await _signed_in(request, Operation.CREATE)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    values = forms.values_of_form(form)
    try:
        changes, email = forms.check(values, editing=False)
        await state(request).phones.create(admin.account, changes, email, legacy=True)
    except ValidationFailed as e:
        return _form_page(request, admin, values=values, errors=forms.errors_by_input(e.errors),
                          message="Some fields need attention.", status=400)
    except (UserNotFound, DuplicatePhoneEmail) as e:
        return _form_page(request, admin, values=values, errors={"user_email": e.message},
                          message="Some fields need attention.", status=400)
    except ZoomError as e:
        return _form_page(request, admin, values=values, message=e.message, status=400)
    return RedirectResponse("/console/phones?notice=created", status_code=303)


async def _stored(request: Request, admin: Admin):
    return await state(request).repo.get_phone(admin.account.id, _phone_id(request))


def _missing(request: Request, admin: Admin) -> Response:
    return render(request, "refused.html", admin, status=404,
                  message="There is no such phone in this account.")


async def edit_form(request: Request) -> Response:
    admin = await _signed_in(request, Operation.UPDATE)
    if isinstance(admin, Response):
        return admin
    phone = await _stored(request, admin)
    if phone is None:
        return _missing(request, admin)
    return _form_page(request, admin, phone=phone, values=forms.values_of_phone(phone))


async def update(request: Request) -> Response:
    admin = await _signed_in(request, Operation.UPDATE)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    phone = await _stored(request, admin)
    if phone is None:
        return _missing(request, admin)
    values = forms.values_of_form(form)
    try:
        changes, _ = forms.check(values, editing=True, stored=phone)
        await state(request).phones.update(admin.account, phone.id, changes, legacy=True)
    except ValidationFailed as e:
        return _form_page(request, admin, phone=phone, values=values, errors=forms.errors_by_input(e.errors),
                          message="Some fields need attention.", status=400)
    except ZoomError as e:
        return _form_page(request, admin, phone=phone, values=values, message=e.message, status=400)
    return RedirectResponse("/console/phones?notice=updated", status_code=303)


async def delete_form(request: Request) -> Response:
    admin = await _signed_in(request, Operation.DELETE)
    if isinstance(admin, Response):
        return admin
    phone = await _stored(request, admin)
    if phone is None:
        return _missing(request, admin)
    return render(request, "phone_delete.html", admin, phone=phone)


async def delete(request: Request) -> Response:
    admin = await _signed_in(request, Operation.DELETE)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    try:
        await state(request).phones.delete(admin.account, _phone_id(request), legacy=True)
    except ZoomError:
        return _missing(request, admin)
    return RedirectResponse("/console/phones?notice=deleted", status_code=303)


async def check_now(request: Request) -> Response:
    """REGISTER with the phone's stored credentials to each of its server sets (``check`` service,
    as ``POST /_sipphones/v1/sip_phones/{id}/check`` runs it) and show each set's result."""
    from sipphones.check.service import CheckOptions, check_phone

    admin = await _signed_in(request, Operation.CHECK)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    phone = await _stored(request, admin)
    if phone is None:
        return _missing(request, admin)
    options = CheckOptions(server_budget=TIMEOUT_DEFAULT, ca_file=os.environ.get("SIPPHONES_SIP_CA_FILE") or None)
    async with check_slots():
        report = await check_phone(phone, options)
    return render(request, "phone_check.html", admin, phone=phone, report=report.to_dict())
