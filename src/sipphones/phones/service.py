"""What an account can do with its SIP phones, under Zoom's rules (no HTTP here)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sipphones.accounts.models import Account
from sipphones.errors import (
    DuplicatePhoneEmail, FieldError, LegacyPhoneNotFound, PhoneNotFound, SipIntegrationDisabled, UserNotFound,
    ValidationFailed, ZoomError,
)
from sipphones.ids import new_id
from sipphones.phones import fields, rules
from sipphones.phones.models import NO_SERVER, SLOTS, PhoneChanges, ServerSet, SipPhone, flat_name
from sipphones.phones.pagination import PageTokens
from sipphones.phones.rendered import RenderedItems
from sipphones.repository import DuplicateKey, MissingReference, Repository

MAX_PAGE_SIZE = 300
DEFAULT_PAGE_SIZE = 30


@dataclass(frozen=True)
class ListResult:
    phones: list  # PhoneRecord, or what the caller's RenderedItems make of them
    total_records: int
    page_size: int
    page_number: int
    next_page_token: str


class PhoneService:
    def __init__(self, repo: Repository, page_tokens: PageTokens):
        self.repo = repo
        self.page_tokens = page_tokens

    @staticmethod
    def require_integration(account: Account, legacy: bool) -> None:
        if not account.sip_phone_integration:
            raise SipIntegrationDisabled(legacy)

    async def create(self, account: Account, changes: PhoneChanges, user_email: str, *, legacy: bool,
                     label=lambda n: n, email_suffixes: tuple[str, ...] = rules.LEGACY_SUFFIXES,
                     phone_id: str | None = None) -> SipPhone:
        self.require_integration(account, legacy)
        # The exact address first, else its base without a platform suffix: one lookup for both.
        base, suffix = rules.split_email(user_email, email_suffixes)
        user = await self.repo.get_user_by_emails(account.id, (user_email, base) if suffix else (user_email,))
        if user is None:
            raise UserNotFound(user_email)
        now = time.time()
        # What applying the changes to a blank phone gives, built in one step (a create's hot path).
        phone = SipPhone(id=phone_id or new_id(), account_id=account.id, user_email=user_email,
                         servers=_default_transports(changes.new_server_sets()), created_at=now, updated_at=now,
                         **fields.new_scalars(changes.scalars))
        _check_server_sets(phone, label)
        try:
            await self.repo.add_phone(phone, user.id)
        except DuplicateKey:
            raise DuplicatePhoneEmail(legacy) from None
        except MissingReference:  # the user was deleted since it was looked up
            raise UserNotFound(user_email) from None
        return phone

    async def update(self, account: Account, phone_id: str, changes: PhoneChanges, *, legacy: bool,
                     label=lambda n: n) -> SipPhone:
        self.require_integration(account, legacy)
        phone = await self.repo.get_phone(account.id, phone_id)
        if phone is None:
            raise _not_found(phone_id, legacy)
        updated = _with_default_transports(changes.apply(phone, time.time()))
        _check_server_sets(updated, label)
        if not await self.repo.save_phone(updated):
            raise _not_found(phone_id, legacy)
        return updated

    async def delete(self, account: Account, phone_id: str, *, legacy: bool) -> None:
        self.require_integration(account, legacy)
        if not await self.repo.delete_phone(account.id, phone_id):
            raise _not_found(phone_id, legacy)

    async def list(self, account: Account, *, legacy: bool, search: str | None, page_size: int | None,
                   next_page_token: str | None, page_number: int | None = None,
                   rendered: RenderedItems | None = None) -> ListResult:
        """One page of the account's phones: PhoneRecords, or with ``rendered`` the items it
        renders, served from it when every phone of the page is there in its stored version."""
        self.require_integration(account, legacy)
        size = DEFAULT_PAGE_SIZE if page_size is None else min(page_size, MAX_PAGE_SIZE)
        now = self.page_tokens.clock()
        search = (search or "").strip() or None  # a blank search_key lists everything
        after_id, offset, number = None, 0, 1
        if next_page_token:
            cursor = self.page_tokens.read(next_page_token, account_id=account.id, search=search, now=now)
            after_id, number = cursor.after_id, cursor.page_number
        elif page_number and page_number > 1:
            offset, number = (page_number - 1) * size, page_number
        # Only the legacy shape carries total_records (and page_count): the current one skips the count.
        items = None
        if rendered is not None and rendered.capacity and search is None:
            known = await self.repo.list_phone_versions(account.id, after_id=after_id, offset=offset, limit=size,
                                                        with_total=legacy)
            items = rendered.lookup(known.versions)
            total, last_id = known.total_records, known.next_cursor
        if items is None:  # not all rendered (or no memo): the page read whole, from one statement
            page = await self.repo.list_phones(account.id, search=search, after_id=after_id, offset=offset,
                                               limit=size, with_total=legacy)
            items = page.items if rendered is None else rendered.add(page.items, page.versions)
            total, last_id = page.total_records, page.next_cursor
        token = ""
        if last_id is not None:
            token = self.page_tokens.issue(account_id=account.id, search=search, after_id=last_id,
                                           page_number=number + 1, now=now)
        return ListResult(items, total, size, number, token)


def _not_found(phone_id: str, legacy: bool) -> ZoomError:
    return LegacyPhoneNotFound(phone_id) if legacy else PhoneNotFound(phone_id)


def _with_default_transports(phone: SipPhone) -> SipPhone:
    return phone.replace(servers=_default_transports(phone.servers))


def _default_transports(sets: tuple[ServerSet, ...]) -> tuple[ServerSet, ServerSet, ServerSet]:
    """A configured server set without a transport uses the default transport (``fields``)."""
    return tuple(  # type: ignore[return-value]
        (s if s.transport_protocol else ServerSet(s.register_server, s.proxy_server, fields.DEFAULT_TRANSPORT))
        if s.configured
        else s if s.proxy_server  # incomplete: reported by _check_server_sets
        else NO_SERVER
        for s in sets
    )


def _check_server_sets(phone: SipPhone, label) -> None:
    errors = []
    for slot in SLOTS:
        s = phone.server(slot)
        if not s.configured and s.proxy_server:
            errors.append(FieldError(label(flat_name("register_server", slot)),
                                     f"Required when {label(flat_name('proxy_server', slot))} is given."))
    if not phone.server(1).configured:
        errors.append(FieldError(label("register_server"), "Required field is missing."))
    if errors:
        raise ValidationFailed(errors)
