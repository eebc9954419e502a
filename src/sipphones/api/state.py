"""Everything a request handler needs, built once per server process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import orjson

from sipphones.accounts.service import AccountService
from sipphones.api.shapes import current_record, legacy_record
from sipphones.auth.tokens import TokenService
from sipphones.auth.user_oauth import UserOAuth
from sipphones.config import Settings
from sipphones.emulator.clock import Clock
from sipphones.emulator.faults import FaultRules
from sipphones.emulator.journal import Journal
from sipphones.emulator.service import Emulator
from sipphones.phones.pagination import PageTokens
from sipphones.phones.rendered import RenderedItems
from sipphones.phones.service import PhoneService
from sipphones.ratelimit.limiter import RateLimiter
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.database import migrate
from sipphones.storage.keys import Keys, load_master_key
from sipphones.repository import PhoneRecord, Repository
from sipphones.storage.store import SqlRepository


@dataclass
class AppState:
    settings: Settings
    repo: Repository
    accounts: AccountService
    phones: PhoneService
    tokens: TokenService
    user_oauth: UserOAuth                          # user-managed apps: codes, grants, refresh tokens
    page_tokens: PageTokens
    limiter: RateLimiter
    legacy_items: RenderedItems[orjson.Fragment]   # list items as JSON, rendered once per phone version
    current_items: RenderedItems[orjson.Fragment]
    console_key: bytes = b""   # signs the admin console's session cookies (sipphones.console)
    emulator: Emulator | None = None    # emulator mode only (sipphones.emulator): the control object

    @classmethod
    def build(cls, settings: Settings, *, run_migrations: bool = True) -> "AppState":
        url = settings.resolved_database_url()
        if run_migrations:
            migrate(url)
        keys = Keys.derive(load_master_key(settings.secret_key, settings.data_dir))
        repo = SqlRepository.from_url(url, PasswordCipher(keys.sip_password), settings.sqlite_pragmas(),
                                      settings.postgres_tuning())
        # The one clock every expiry reads: the emulator's (which a test moves), else the system's.
        clock = Clock() if settings.emulator else None
        now = clock.now if clock is not None else time.time
        page_tokens = PageTokens(keys.page_token, settings.page_token_ttl, clock=now)
        tokens = TokenService(keys.access_token, settings.token_ttl, clock=now)
        state = cls(
            settings=settings,
            repo=repo,
            accounts=AccountService(repo),
            phones=PhoneService(repo, page_tokens),
            tokens=tokens,
            user_oauth=UserOAuth(repo, tokens, code_ttl=settings.oauth_code_ttl,
                                 refresh_ttl=settings.refresh_token_ttl),
            page_tokens=page_tokens,
            limiter=RateLimiter(settings.redis_url, timeout=settings.redis_timeout_ms / 1000,
                                cooldown=settings.redis_breaker_cooldown_ms / 1000, wall_clock=now),
            legacy_items=_rendered(legacy_record, settings.list_cache_items),
            current_items=_rendered(current_record, settings.list_cache_items),
            console_key=keys.console_session,
        )
        if clock is not None:
            from sipphones.emulator.seed import Seed

            seed = Seed.load(settings.seed_file) if settings.seed_file else None
            state.emulator = Emulator(repo, state.accounts, state.phones, state.tokens, clock, seed=seed,
                                      on_reset=(state.limiter.reset, state.legacy_items.clear,
                                                state.current_items.clear))
            state.emulator.journal = Journal(settings.journal_max_entries, settings.journal_max_entry_bytes,
                                             now=clock.now, enabled=settings.journal)
            state.emulator.faults = FaultRules()
        return state

    async def start(self) -> None:
        """What needs the event loop once, before the first request (the emulator's seed and baseline)."""
        if self.emulator is not None:
            await self.emulator.start()

    async def close(self) -> None:
        await self.repo.close()


def _rendered(shape: Callable[[PhoneRecord], dict], capacity: int) -> RenderedItems[orjson.Fragment]:
    dumps, fragment = orjson.dumps, orjson.Fragment
    # orjson writes into a buffer of several KiB and shrinks it in place, which leaves the whole
    # allocation behind (20,000 items: ~80 MB of RSS); a kept item is copied to its exact size.
    return RenderedItems(lambda record: fragment(bytes(memoryview(dumps(shape(record))))), capacity)


def app_state(request) -> AppState:
    """The running application's state, as ``request.app.state.sipphones`` holds it, read from the
    application's own attribute: Starlette's ``State`` finds a key only after a failed attribute
    lookup has raised and caught an AttributeError (~1-3 µs, several times per request)."""
    return request.scope["app"].sipphones
