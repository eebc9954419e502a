"""Each phone's registration status as ``sipphones monitor`` recorded it, listed for an account.

The monitor writes one ``phone_status`` row per phone it manages (``sipphones.monitor.status``);
this lists the account's phones with those rows, in phone id order, optionally only those in
some states. A phone without a row (no monitor has managed it yet) is in state ``unknown``.
No HTTP here: ``api/status.py`` translates.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipphones.accounts.models import Account
from sipphones.errors import FieldError, ValidationFailed
from sipphones.phones.pagination import PageTokens
from sipphones.phones.service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PhoneService
from sipphones.repository import UNKNOWN_STATE, PhoneStatusEntry, Repository

__all__ = ["STATES", "FAILED_STATES", "UNKNOWN_STATE", "StatusList", "PhoneStatusService", "parse_states"]

# Every state a phone can be in: the monitor's (the registration machine's states, and
# ``invalid`` for a record that cannot be turned into a registration), and ``unknown``.
# tests/test_phone_status_states.py keeps this in step with sipphones.sip.registration.
STATES = ("registered", "failed", "invalid", "idle", "resolving", "connecting", "registering", "stopping",
          "stopped", UNKNOWN_STATE)
# Not registered anywhere because registering failed (``--failed`` of ``sipphones phones status``).
FAILED_STATES = ("failed", "invalid")
MAX_STATES_TEXT = 200  # characters of a ``state`` filter (every state once, comma-separated, is 94)


def parse_states(text: str | None) -> tuple[str, ...] | None:
    """``failed`` or ``failed,invalid`` -> the states, each once, in the order given; None or a
    blank text -> None (every state). An unknown state is a validation error naming ``state``."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_STATES_TEXT:
        raise ValidationFailed([FieldError("state", f"Must be at most {MAX_STATES_TEXT} characters.")])
    states: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if name not in STATES:
            raise ValidationFailed([FieldError("state", f"Must be one or more of {', '.join(STATES)} (separated "
                                                        f"by commas), not {part.strip()[:40]!r}.")])
        if name not in states:
            states.append(name)
    return tuple(states)


@dataclass(frozen=True)
class StatusList:
    phones: list[PhoneStatusEntry]
    page_size: int
    next_page_token: str


class PhoneStatusService:
    def __init__(self, repo: Repository, page_tokens: PageTokens):
        self.repo = repo
        self.page_tokens = page_tokens

    async def list(self, account: Account, *, states: tuple[str, ...] | None, page_size: int | None,
                   next_page_token: str | None) -> StatusList:
        """One page of the account's phones with their status, only those in ``states`` when
        given. Page tokens are bound to the account and the filter (another filter's token is
        refused, as the phone lists do)."""
        PhoneService.require_integration(account, legacy=False)
        size = DEFAULT_PAGE_SIZE if page_size is None else max(1, min(page_size, MAX_PAGE_SIZE))
        now = self.page_tokens.clock()
        query = _query_key(states)
        after_id = None
        if next_page_token:
            after_id = self.page_tokens.read(next_page_token, account_id=account.id, search=query, now=now).after_id
        page = await self.repo.list_phone_statuses(account.id, states=states, after_id=after_id, limit=size)
        token = ""
        if page.next_cursor is not None:
            token = self.page_tokens.issue(account_id=account.id, search=query, after_id=page.next_cursor,
                                           page_number=1, now=now)
        return StatusList(page.items, size, token)


def _query_key(states: tuple[str, ...] | None) -> str:
    """What a page token of this listing is bound to: the same for the same set of states, and
    never a phone list's search key (a search holding a NUL character matches no phone, so no
    phone list issues a token for one)."""
    return "\x00status:" + ",".join(sorted(states or ()))
