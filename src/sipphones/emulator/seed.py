"""Seed files: the accounts, users, apps and phones an emulator starts from (``serve --seed``),
and returns to on every reset. YAML or JSON (YAML is a superset), for example::

    seed: 42                      # optional: the same ids on every run and every machine
    accounts:
      - id: AcmeAccount0000000001 # optional (generated, from ``seed`` when given)
        name: Acme
        plan: business            # free, pro (default) or business
        sip_phone_integration: true
        unlimited: false          # true: no rate limits
        users:
          - {email: alice@example.com, first_name: Alice, last_name: Anders}
        apps:
          - client_id: acmeClientId00000001   # optional
            client_secret: acme-secret-do-not-use-in-prod
            scopes: [sip_phone:read:admin, sip_phone:write:admin]   # optional: all
        phones:                   # the legacy API's flat fields (POST /v2/sip_phones)
          - user_email: alice@example.com
            user_name: "1001"
            authorization_name: "1001"
            password: s3cret
            domain: sip.example.com
            register_server: 192.0.2.10
            proxy_server: 192.0.2.10
            transport_protocol: UDP
            voice_mail: "4000"

Everything is checked when the file is read (``Seed.load``), so ``serve --seed`` refuses a bad
file before it listens, with a sentence naming the entry; phones pass the same validation as the
API. ``apply`` writes the seed into an empty store through the services.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipphones.accounts.models import ALL_PERMISSIONS, App, Plan
from sipphones.auth.scopes import DEFAULT_APP_SCOPES, KNOWN_SCOPES
from sipphones.errors import ZoomError
from sipphones.ids import new_id
from sipphones.phones import fields
from sipphones.phones.validation import validate_phone_fields
from sipphones.storage.crypto import hash_secret

MAX_SEED_BYTES = 16 * 1024 * 1024
MAX_ACCOUNTS = 10_000
MAX_ITEMS = 100_000          # users, apps or phones in one account
SEED_EPOCH_MS = 1_577_836_800_000  # 2020-01-01: the clock part of seeded ids (creation order)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class SeedError(ValueError):
    """A seed file that cannot be used; the message names the file and the entry."""


@dataclass
class Seed:
    accounts: list[dict]
    number: int | None = None
    source: str = "<seed>"

    @classmethod
    def load(cls, path: str | Path) -> "Seed":
        path = Path(path)
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_SEED_BYTES + 1)
        except OSError as e:
            raise SeedError(f"cannot read the seed file {path}: {e.strerror or e}") from None
        if len(raw) > MAX_SEED_BYTES:
            raise SeedError(f"the seed file {path} is larger than {MAX_SEED_BYTES // (1024 * 1024)} MiB")
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: bytes | str, source: str = "<seed>") -> "Seed":
        import yaml

        try:
            data = yaml.safe_load(raw)  # JSON is YAML too
        except yaml.YAMLError as e:
            raise SeedError(f"the seed file {source} is not valid YAML or JSON: {e}") from None
        return cls.from_dict(data if data is not None else {}, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<seed>") -> "Seed":
        def bad(where: str, message: str) -> SeedError:
            return SeedError(f"seed file {source}: {where}: {message}")

        if not isinstance(data, dict):
            raise bad("top level", "must be a mapping with 'accounts' (and optionally 'seed')")
        unknown = set(data) - {"seed", "accounts"}
        if unknown:
            raise bad("top level", f"unknown key {sorted(unknown)[0]!r}")
        number = data.get("seed")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise bad("seed", "must be a whole number")
        accounts = data.get("accounts") or []
        if not isinstance(accounts, list) or len(accounts) > MAX_ACCOUNTS:
            raise bad("accounts", f"must be a list of at most {MAX_ACCOUNTS:,} accounts")
        ids: set[str] = set()
        client_ids: set[str] = set()
        for i, account in enumerate(accounts):
            where = f"accounts[{i}]"
            _check_account(account, where, bad)
            if "id" in account:
                if account["id"] in ids:
                    raise bad(where, f"the account id {account['id']!r} is used twice")
                ids.add(account["id"])
            for j, app in enumerate(account.get("apps") or []):
                if "client_id" in app:
                    if app["client_id"] in client_ids:
                        raise bad(f"{where}.apps[{j}]", f"the client_id {app['client_id']!r} is used twice")
                    client_ids.add(app["client_id"])
        return cls(accounts=accounts, number=number, source=source)

    async def apply(self, repo, accounts, phones) -> None:
        """Write the seed into the (empty) store through the services: the same rules as the API."""
        ids = _Ids(self.number)
        for i, spec in enumerate(self.accounts):
            where = f"seed file {self.source}: accounts[{i}]"
            try:
                account = await accounts.create_account(
                    spec.get("name", f"Account {i + 1}"), Plan(spec.get("plan", "pro")),
                    sip_phone_integration=spec.get("sip_phone_integration", True),
                    unlimited=spec.get("unlimited", False), account_id=spec.get("id") or ids.id())
            except ValueError as e:
                raise SeedError(f"{where}: {e}") from None
            for j, user in enumerate(spec.get("users") or []):
                try:
                    await accounts.create_user(account.id, user["email"], user.get("first_name", ""),
                                               user.get("last_name", ""), user.get("type", 1),
                                               user_id=user.get("id") or ids.id())
                except ZoomError as e:
                    raise SeedError(f"{where}.users[{j}]: {_zoom_message(e)}") from None
            for app in spec.get("apps") or []:
                await repo.add_app(App(
                    client_id=app.get("client_id") or ids.client_id(), account_id=account.id,
                    name=app.get("name", "Server-to-Server app"), secret_hash=hash_secret(app["client_secret"]),
                    scopes=tuple(app.get("scopes") or DEFAULT_APP_SCOPES), permissions=ALL_PERMISSIONS,
                    created_at=account.created_at))
            for j, phone in enumerate(spec.get("phones") or []):
                try:
                    changes, email = validate_phone_fields(phone, required=fields.LEGACY_CREATE_REQUIRED)
                    await phones.create(account, changes, email, legacy=True, phone_id=phone.get("id") or ids.id())
                except ZoomError as e:
                    raise SeedError(f"{where}.phones[{j}]: {_zoom_message(e)}") from None


class _Ids:
    """Ids for seeded rows: from ``random.Random(seed)`` when a seed number is given (the same
    on every run), else the ordinary random ones."""

    def __init__(self, number: int | None) -> None:
        self._rng = random.Random(number) if number is not None else None
        self._n = 0

    def id(self) -> str:
        if self._rng is None:
            return new_id()
        self._n += 1
        return new_id(SEED_EPOCH_MS + self._n, self._rng.randbytes(11))

    def client_id(self) -> str:
        if self._rng is None:
            from sipphones.ids import new_client_id

            return new_client_id()
        return "".join(self._rng.choice(_ALNUM) for _ in range(22))


def _zoom_message(error: ZoomError) -> str:
    body = error.body()
    details = body.get("errors") or []
    if details:
        return "; ".join(f"{d.get('field')}: {d.get('message')}" for d in details)
    return str(body.get("message"))


_ACCOUNT_KEYS = {"id", "name", "plan", "sip_phone_integration", "unlimited", "users", "apps", "phones"}
_USER_KEYS = {"id", "email", "first_name", "last_name", "type"}
_APP_KEYS = {"client_id", "client_secret", "name", "scopes"}
_PHONE_KEYS = set(fields.RECORD_NAMES)


def _check_account(account: Any, where: str, bad) -> None:
    if not isinstance(account, dict):
        raise bad(where, "must be a mapping")
    unknown = set(account) - _ACCOUNT_KEYS
    if unknown:
        raise bad(where, f"unknown key {sorted(unknown)[0]!r}")
    _text(account, "id", where, bad, 1, 32, ids=True)
    _text(account, "name", where, bad, 1, 255)
    if account.get("plan", "pro") not in {p.value for p in Plan}:
        raise bad(where, f"plan must be one of {', '.join(p.value for p in Plan)}")
    for flag in ("sip_phone_integration", "unlimited"):
        if flag in account and not isinstance(account[flag], bool):
            raise bad(where, f"{flag} must be true or false")
    for key, allowed in (("users", _USER_KEYS), ("apps", _APP_KEYS), ("phones", _PHONE_KEYS)):
        items = account.get(key) or []
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise bad(where, f"{key} must be a list of at most {MAX_ITEMS:,} entries")
        for j, item in enumerate(items):
            here = f"{where}.{key}[{j}]"
            if not isinstance(item, dict):
                raise bad(here, "must be a mapping")
            unknown = set(item) - allowed
            if unknown:
                raise bad(here, f"unknown key {sorted(unknown)[0]!r}")
            if key == "users":
                _text(item, "email", here, bad, 3, 128, required=True)
                _text(item, "id", here, bad, 1, 32, ids=True)
            elif key == "apps":
                _text(item, "client_secret", here, bad, 8, 256, required=True)
                _text(item, "client_id", here, bad, 8, 64, ids=True)
                _text(item, "name", here, bad, 1, 128)
                scopes = item.get("scopes")
                if scopes is not None:
                    if not isinstance(scopes, list) or not all(s in KNOWN_SCOPES for s in scopes):
                        raise bad(here, f"scopes must be a list of known scopes ({', '.join(KNOWN_SCOPES)})")
            else:
                _text(item, "id", here, bad, 1, 32, ids=True)


def _text(item: dict, key: str, where: str, bad, low: int, high: int, *, required: bool = False,
          ids: bool = False) -> None:
    if key not in item:
        if required:
            raise bad(where, f"{key} is required")
        return
    value = item[key]
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise bad(where, f"{key} must be text of {low} to {high} characters")
    if ids and not all(c.isascii() and (c.isalnum() or c in "_-~") for c in value):
        raise bad(where, f"{key} may hold only letters, digits, '_', '-' and '~'")
