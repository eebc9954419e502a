"""The emulator's control object: reset, fresh accounts, snapshots and the clock, as Python calls.

``Emulator`` is what ``AppState.emulator`` holds in emulator mode (None otherwise). The HTTP
control plane (``sipphones.api.control``) and the in-process mode (``sipphones.emulator.inprocess``)
both call it.

Reset. The state the emulator returns to (the *baseline*) is taken when the emulator starts:
the seed file applied to an empty store (``serve --seed``), or, without one, whatever the store
held at start (the ``--demo`` account, for instance). ``reset()`` deletes every row and inserts
the baseline's in one transaction, and also turns the clock back, empties the rate-limit
counters, the rendered-list caches, the request journal and the fault rules. ``reset(account_id)``
does the same for one account's rows only (the account goes back to its baseline, or is gone if
the baseline has none), and leaves the clock, journal and faults to the other accounts' tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from sipphones.accounts.models import ALL_PERMISSIONS, Account, App, NewApp, Plan, User
from sipphones.accounts.service import AccountService
from sipphones.auth.scopes import DEFAULT_APP_SCOPES, KNOWN_SCOPES
from sipphones.auth.tokens import TokenService
from sipphones.emulator.clock import Clock
from sipphones.ids import new_client_id, new_id, new_secret
from sipphones.phones import rules
from sipphones.phones.service import PhoneService
from sipphones.repository import Repository
from sipphones.storage.crypto import hash_secret

SNAPSHOT_FORMAT = "sipphones-snapshot"
SNAPSHOT_VERSION = 1
MAX_FRESH_USERS = 100  # users a fresh account may be created with, in one call


class Emulator:
    def __init__(self, repo: Repository, accounts: AccountService, phones: PhoneService, tokens: TokenService,
                 clock: Clock, *,
                 seed: Any = None, on_reset: tuple[Callable[[], Any], ...] = ()) -> None:
        self.repo = repo
        self.accounts = accounts
        self.phones = phones
        self.tokens = tokens
        self.clock = clock
        self.seed = seed
        self.journal: Any = None   # sipphones.emulator.journal.Journal, once wired (h-faults)
        self.faults: Any = None    # sipphones.emulator.faults.FaultRules, once wired (h-faults)
        self._on_reset = on_reset
        self._baseline: Any = None  # the repository's prepare_state of the baseline's rows
        self._lock = asyncio.Lock()  # one reset or load at a time

    async def start(self) -> None:
        """Apply the seed (if any) and take the baseline reset returns to."""
        if self.seed is not None:
            await self.repo.replace_state({})
            await self.seed.apply(self.repo, self.accounts, self.phones)
        self._baseline = self.repo.prepare_state(await self.repo.dump_state())

    # --- reset ----------------------------------------------------------------------------
    async def reset(self, account_id: str | None = None) -> dict:
        async with self._lock:
            await self.repo.replace_state(self._baseline, account_id)
            if account_id is None:
                self.clock.reset()
                for part in (self.journal, self.faults):
                    if part is not None and hasattr(part, "clear"):
                        part.clear()
            for hook in self._on_reset:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
        return {"reset": "account" if account_id else "all", "account_id": account_id}

    # --- fresh accounts (one per test) ----------------------------------------------------
    async def fresh_account(self, *, plan: str = "pro", scopes: list[str] | None = None, name: str = "Test account",
                            sip_phone_integration: bool = True, unlimited: bool = False,
                            users: list[str] | None = None) -> dict:
        """A new account with a Server-to-Server app and an access token for it (and ``users``,
        e-mail addresses, as its users)."""
        try:
            account_plan = Plan(plan)
        except ValueError:
            raise ValueError(f"plan must be one of {', '.join(p.value for p in Plan)}, not {plan!r}") from None
        app_scopes = tuple(DEFAULT_APP_SCOPES if scopes is None else scopes)
        unknown = [s for s in app_scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r}")
        emails = list(users or [])
        if len(emails) > MAX_FRESH_USERS:
            raise ValueError(f"at most {MAX_FRESH_USERS} users per fresh account")
        name = name.strip()
        if not 0 < len(name) <= 255 or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError("name must be 1 to 255 printable characters")
        bad = [e for e in emails if not isinstance(e, str) or rules.check_email(e)]
        if bad:
            raise ValueError(f"not an e-mail address: {str(bad[0])[:130]!r}")
        if len({e.lower() for e in emails}) != len(emails):
            raise ValueError("users holds the same e-mail address twice")
        now = time.time()
        account = Account(id=new_id(), name=name, plan=account_plan, sip_phone_integration=sip_phone_integration,
                          unlimited=unlimited, created_at=now)
        users_ = [User(id=new_id(), account_id=account.id, email=e.lower(), created_at=now) for e in emails]
        secret = new_secret(24)
        app = App(client_id=new_client_id(), account_id=account.id, name="Test app", secret_hash=hash_secret(secret),
                  scopes=app_scopes, permissions=ALL_PERMISSIONS, created_at=now)
        await self.repo.add_account_bundle(account, users_, app)
        created = NewApp(app=app, client_secret=secret)
        token, claims = self.tokens.issue(account_id=account.id, client_id=created.app.client_id,
                                          scopes=created.app.scopes, permissions=created.app.permissions)
        return {"account_id": account.id, "client_id": created.app.client_id,
                "client_secret": created.client_secret, "access_token": token,
                "expires_in": claims.expires_at - claims.issued_at, "plan": account.plan.value,
                "scopes": list(created.app.scopes)}

    # --- snapshots ------------------------------------------------------------------------
    async def snapshot(self) -> dict:
        """The whole stored state (phone passwords in clear, app secrets as their hashes), and the clock."""
        return {"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "clock": self.clock.describe(),
                "tables": await self.repo.dump_state()}

    async def load_snapshot(self, data: Any, *, baseline: bool = False) -> dict:
        """Replace the whole state with a snapshot's; with ``baseline``, reset returns to it from now on."""
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f'not a snapshot: "format" must be "{SNAPSHOT_FORMAT}"')
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {data.get('version')!r} is not supported (this is {SNAPSHOT_VERSION})")
        tables = data.get("tables")
        if not isinstance(tables, dict):
            raise ValueError('a snapshot needs "tables": an object of table names and their rows')
        async with self._lock:
            await self.repo.replace_state(tables)
            if baseline:
                self._baseline = self.repo.prepare_state(await self.repo.dump_state())
            for hook in self._on_reset:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
        return {"loaded": sum(len(rows) for rows in tables.values()), "baseline": baseline}
