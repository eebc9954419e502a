"""Configuration: environment variables (``SIPPHONES_*``) and command-line overrides.

A plain dataclass read from the environment (no settings framework): every worker process of
``serve`` loads this at start, and importing pydantic-settings alone cost ~70 ms of a start that
must answer /healthz within a second.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from sipphones.storage.pragmas import (
    DEFAULT_WAL_AUTOCHECKPOINT, SYNCHRONOUS_LEVELS, PostgresTuning, SqlitePragmas,
)

ENV_PREFIX = "SIPPHONES_"
MAX_GROUP_CREATES = 256  # phone creates per PostgreSQL statement (x 21 parameters, of at most 65,535)
MAX_POOL_SIZE = 200   # PostgreSQL connections per pool and process (the server's max_connections is 100 by default)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sipphones"


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""           # empty: a SQLite file in data_dir
    redis_url: str = ""              # empty: rate-limit counters in memory
    # Milliseconds Redis has to connect or answer a command; beyond that the request passes unlimited.
    redis_timeout_ms: int = 50
    # Milliseconds the limiter leaves Redis alone after a failure before one request probes it again.
    redis_breaker_cooldown_ms: int = 2000
    secret_key: str = ""             # base64 of 32 bytes; empty: generated into data_dir on first run
    token_ttl: int = 3600            # seconds an access token lives (Zoom: 3600)
    page_token_ttl: int = 900        # seconds a next_page_token lives (Zoom: 15 minutes)
    oauth_code_ttl: int = 300        # seconds an authorization code lives (Zoom: 5 minutes)
    refresh_token_ttl: int = 7_776_000  # seconds a refresh token lives unused (Zoom: 90 days)
    sqlite_synchronous: str = "NORMAL"  # NORMAL (WAL: durable on checkpoint) or FULL
    # WAL pages after which a committing connection checkpoints (SQLite's wal_autocheckpoint).
    sqlite_wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT
    # ``serve``: milliseconds between the WAL checkpoints of its checkpoint process; 0: no such
    # process, every connection checkpoints inside its COMMIT (SQLite's way).
    sqlite_checkpoint_interval_ms: int = 250
    list_cache_items: int = 20_000   # list items kept rendered per process and API shape; 0: none
    # The HTTP surface (``serve``; see sipphones.api.http_protocol and sipphones.api.body).
    api_url: str = ""                # the token answer's ``api_url``; empty: the address the client reached
    http_max_body_bytes: int = 65_536     # a Zoom JSON endpoint's request body
    http_max_form_bytes: int = 8_192      # the form body of POST /oauth/token
    http_max_head_bytes: int = 32_768     # request line and headers together
    http_keep_alive_s: int = 75           # an idle keep-alive connection is closed after this
    http_idle_timeout_s: int = 10         # a new connection must send its first byte within this
    http_header_timeout_s: int = 10       # a request head must be complete this long after its first byte
    http_max_connections: int = 4096      # open connections per worker process
    # PostgreSQL connections each process keeps (SQLite: unused). The request hot path's pool
    # (``storage.raw.postgres``) grows to ``database_pool_size`` under load and keeps them (idle
    # ones beyond two close after 5 minutes); the SQLAlchemy pool of the admin, OAuth, search and
    # monitor paths holds ``database_admin_pool_size``, never one more: a connection is never
    # opened for one request and closed after it (a new PostgreSQL backend each time).
    database_pool_size: int = 10
    database_admin_pool_size: int = 4
    # PostgreSQL: the most phone creates of one account written in one statement and commit
    # (storage.raw.pg_group: creates that arrive while the account's last group is written wait
    # for the next one); 1: each create alone.
    database_group_creates: int = 64
    # ``serve --workers N``: seconds a worker may leave the supervisor's ping unanswered before it
    # is replaced as hung (its loop may block up to SQLite's 10 s busy timeout).
    worker_healthcheck_s: int = 30
    # Emulator mode (``serve --emulator``, sipphones.emulator): the control plane under /_sipphones/v1,
    # for test suites; every request to it needs this operator token (empty: one is generated).
    emulator: bool = False
    admin_token: str = field(default="", repr=False)
    seed_file: str = ""              # emulator mode: a seed file (YAML or JSON) applied at start and by reset
    # Emulator mode: the request journal (sipphones.emulator.journal), in memory: on or off, how many
    # entries it keeps (the oldest go first) and how many bytes of headers and bodies per entry.
    journal: bool = True
    journal_max_entries: int = 1000
    journal_max_entry_bytes: int = 32_768
    # User-managed OAuth apps: ``GET /oauth/authorize`` signs a user in without a password (the
    # user named by ``login_hint``, or picked on a page). Always on in emulator mode; in normal
    # mode only when the operator asks for it, since anyone who reaches the server could then act
    # as any user of such an app's account (within the app's scopes).
    oauth_emulated_sign_in: bool = False

    def __post_init__(self) -> None:
        # Values may come as text (environment, command line): convert to each field's type.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("Path", Path) and not isinstance(value, Path):
                setattr(self, f.name, Path(value))
            elif f.type in ("int", int) and not isinstance(value, int):
                try:
                    setattr(self, f.name, int(str(value).strip()))
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be an integer, not {value!r}") from None
            elif f.type in ("bool", bool) and not isinstance(value, bool):
                text = str(value).strip().lower()
                if text not in _BOOLEANS:
                    raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be 1 or 0 (true or false), not {value!r}")
                setattr(self, f.name, _BOOLEANS[text])
            elif f.type in ("str", str) and not isinstance(value, str):
                setattr(self, f.name, str(value))

        if self.list_cache_items < 0:
            raise ValueError(f"{ENV_PREFIX}LIST_CACHE_ITEMS must be 0 or more, not {self.list_cache_items}")
        self.sqlite_synchronous = self.sqlite_synchronous.strip().upper()
        if self.sqlite_synchronous not in SYNCHRONOUS_LEVELS:
            # It ends up in a PRAGMA statement: only SQLite's own words are accepted.
            raise ValueError(f"{ENV_PREFIX}SQLITE_SYNCHRONOUS must be NORMAL, FULL, EXTRA or OFF, "
                             f"not {self.sqlite_synchronous!r}")
        for name, low, high in (("redis_timeout_ms", 1, 60_000), ("redis_breaker_cooldown_ms", 0, 3_600_000)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be from {low} to {high:,} milliseconds, "
                                 f"not {getattr(self, name)}")
        for name in ("sqlite_wal_autocheckpoint", "sqlite_checkpoint_interval_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be 0 or more, not {getattr(self, name)}")

        for name in ("oauth_code_ttl", "refresh_token_ttl"):
            if not 1 <= getattr(self, name) <= 10 * 365 * 86400:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be from 1 second to 10 years, "
                                 f"not {getattr(self, name)}")
        for name in ("database_pool_size", "database_admin_pool_size"):
            if not 1 <= getattr(self, name) <= MAX_POOL_SIZE:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be from 1 to {MAX_POOL_SIZE} connections, "
                                 f"not {getattr(self, name)}")
        if not 1 <= self.database_group_creates <= MAX_GROUP_CREATES:
            raise ValueError(f"{ENV_PREFIX}DATABASE_GROUP_CREATES must be from 1 to {MAX_GROUP_CREATES}, "
                             f"not {self.database_group_creates}")
        if not 1 <= self.worker_healthcheck_s <= 3600:
            raise ValueError(f"{ENV_PREFIX}WORKER_HEALTHCHECK_S must be from 1 to 3,600 seconds, "
                             f"not {self.worker_healthcheck_s}")
        for name in HTTP_LIMITS:
            if getattr(self, name) < 1:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be 1 or more, not {getattr(self, name)}")
        self.api_url = _api_url(self.api_url)
        if not 1 <= self.journal_max_entries <= 1_000_000:
            raise ValueError(f"{ENV_PREFIX}JOURNAL_MAX_ENTRIES must be from 1 to 1,000,000, not {self.journal_max_entries}")
        if not 1024 <= self.journal_max_entry_bytes <= 16_777_216:
            raise ValueError(f"{ENV_PREFIX}JOURNAL_MAX_ENTRY_BYTES must be from 1,024 to 16,777,216, "
                             f"not {self.journal_max_entry_bytes}")
        self.admin_token = self.admin_token.strip()
        if self.emulator and not self.admin_token:
            import secrets

            self.admin_token = secrets.token_urlsafe(24)
        if self.admin_token and not 16 <= len(self.admin_token) <= 256:
            raise ValueError(f"{ENV_PREFIX}ADMIN_TOKEN must be 16 to 256 characters long")

    def sqlite_pragmas(self) -> SqlitePragmas:
        return SqlitePragmas(self.sqlite_synchronous, self.sqlite_wal_autocheckpoint)

    def postgres_tuning(self) -> "PostgresTuning":
        return PostgresTuning(self.database_pool_size, self.database_admin_pool_size, self.database_group_creates)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sipphones.db').resolve()}"


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False,
             "": False}

HTTP_LIMITS = ("http_max_body_bytes", "http_max_form_bytes", "http_max_head_bytes", "http_keep_alive_s",
               "http_idle_timeout_s", "http_header_timeout_s", "http_max_connections")


def _api_url(value: str) -> str:
    """``SIPPHONES_API_URL``: empty, or an http(s) URL without query or fragment (trailing ``/`` dropped)."""
    from urllib.parse import urlsplit

    value = value.strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{ENV_PREFIX}API_URL must be an http:// or https:// URL without query, fragment or "
                         f"credentials, such as https://api.example.com, not {value!r}")
    return value.rstrip("/")


def _from_environment() -> dict[str, str]:
    """``SIPPHONES_<FIELD>`` for every field (names case-insensitive, as before)."""
    names = {f.name for f in dataclasses.fields(Settings)}
    out = {}
    for key, value in os.environ.items():
        upper = key.upper()
        if upper.startswith(ENV_PREFIX):
            name = upper[len(ENV_PREFIX):].lower()
            if name in names:
                out[name] = value
    return out


def load_settings(**overrides) -> Settings:
    """Defaults, then the environment, then ``overrides`` that are not None."""
    values = _from_environment()
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
