"""The CSV import's and export's calls carried out in process, on one account's domain services.

``Importer`` and ``export_phones`` (``provisioning.importer``) speak to the account through six
calls of the API client (list phones, list users, create a user, create a phone in either shape,
update a phone). ``LocalDirectory`` answers those same calls without HTTP, for a caller that runs
inside the service (the admin console): each call goes through the same steps as the API
endpoint it stands for (the body translated by ``api.shapes``, checked by
``phones.validation.validate_phone_fields`` with the request's required fields, carried out by
``PhoneService`` / ``AccountService``), and a refusal is raised as the client would raise it
(``ZoomAPIError`` with Zoom's code, message and field errors), so the importer plans, validates
and reports exactly as it does over HTTP. The account's rate limit is not counted: the caller is
the account's signed-in administrator in this process, not an API client.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Mapping

from sipphones.accounts.models import Account
from sipphones.accounts.service import AccountService
from sipphones.api.shapes import current_fields, current_label, current_phone, current_record, legacy_fields, \
    legacy_phone
from sipphones.client import FieldError as ClientFieldError, ZoomAPIError
from sipphones.errors import FieldError, ZoomError
from sipphones.phones import fields, rules
from sipphones.phones.service import MAX_PAGE_SIZE, PhoneService
from sipphones.phones.validation import validate_phone_fields
from sipphones.repository import Repository

MAX_PAGES = 100_000  # a bound on any walk (300 a page: 30 million phones)


def _as_client_error(e: ZoomError) -> ZoomAPIError:
    errors = tuple(ClientFieldError(fe.field, fe.message) for fe in getattr(e, "errors", ()) or ())
    return ZoomAPIError(e.status, e.code, e.message, errors)


class LocalDirectory:
    """The client calls of an import or export, for ``account``, in process."""

    def __init__(self, account: Account, phones: PhoneService, accounts: AccountService, repo: Repository, *,
                 may_list_users: bool = True):
        self.account = account
        self.may_list_users = may_list_users  # False: listing users is refused as the API refuses it
        self.phones = phones
        self.accounts = accounts
        self.repo = repo

    async def iter_phones(self, *, page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[dict[str, Any]]:
        """Every phone of the account in the current shape (as ``GET /sip_phones/phones``)."""
        token = None
        for _ in range(MAX_PAGES):
            try:
                page = await self.phones.list(self.account, legacy=False, search=None, page_size=page_size,
                                              next_page_token=token)
            except ZoomError as e:
                raise _as_client_error(e) from None
            for record in page.phones:
                yield current_record(record)
            token = page.next_page_token
            if not token:
                return

    async def iter_users(self, *, page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[dict[str, Any]]:
        if not self.may_list_users:
            raise ZoomAPIError(403, 3306, "No permission.")
        after = None
        for _ in range(MAX_PAGES):
            users, _total = await self.repo.list_users(self.account.id, after_id=after, limit=page_size)
            for u in users:
                yield {"id": u.id, "email": u.email}
            if len(users) < page_size:
                return
            after = users[-1].id

    async def create_user(self, email: str, **_: Any) -> dict[str, Any]:
        try:
            user = await self.accounts.create_user(self.account.id, email)
        except ZoomError as e:
            raise _as_client_error(e) from None
        return {"id": user.id, "email": user.email}

    async def create_phone(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """As ``POST /sip_phones/phones``."""
        try:
            flat, errors = current_fields(dict(body))
            required = fields.CURRENT_CREATE_REQUIRED
            if body.get("server") is None:  # name the missing object, not its inner field
                errors.append(FieldError("server", "Required field is missing."))
            if not isinstance(body.get("server"), dict):
                required = tuple(n for n in required if n != "register_server")
            changes, email = validate_phone_fields(flat, required=required, label=current_label,
                                                   email_suffixes=rules.CURRENT_SUFFIXES, errors=errors)
            phone = await self.phones.create(self.account, changes, email, legacy=False, label=current_label,
                                             email_suffixes=rules.CURRENT_SUFFIXES)
        except ZoomError as e:
            raise _as_client_error(e) from None
        return current_phone(phone)

    async def legacy_create_phone(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """As ``POST /sip_phones``."""
        try:
            changes, email = validate_phone_fields(legacy_fields(dict(body)), required=fields.LEGACY_CREATE_REQUIRED)
            phone = await self.phones.create(self.account, changes, email, legacy=True)
        except ZoomError as e:
            raise _as_client_error(e) from None
        return legacy_phone(phone)

    async def update_phone(self, phone_id: str, body: Mapping[str, Any]) -> None:
        """As ``PATCH /sip_phones/phones/{phone_id}``."""
        try:
            flat, errors = current_fields(dict(body))
            for name in fields.NOT_UPDATABLE:
                flat.pop(name, None)
            changes, _ = validate_phone_fields(flat, required=fields.CURRENT_UPDATE_REQUIRED, label=current_label,
                                               errors=errors)
            await self.phones.update(self.account, phone_id, changes, legacy=False, label=current_label)
        except ZoomError as e:
            raise _as_client_error(e) from None
