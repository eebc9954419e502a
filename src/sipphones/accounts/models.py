"""Account-level records."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    BUSINESS = "business"


# Zoom's role permissions behind the SIP phone operations (the extract's x-permissions), and behind
# the users endpoints (Zoom's Users API: User:Read to list, User:Edit to create and delete).
PERM_READ = "SipPhone:Read"
PERM_EDIT = "SipPhone:Edit"
PERM_USER_READ = "User:Read"
PERM_USER_EDIT = "User:Edit"
ALL_PERMISSIONS = (PERM_READ, PERM_EDIT, PERM_USER_READ, PERM_USER_EDIT)


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    plan: Plan = Plan.PRO
    sip_phone_integration: bool = True
    unlimited: bool = False      # exempt from rate limits (load tests, CI)
    created_at: float = 0.0


@dataclass(frozen=True)
class User:
    id: str
    account_id: str
    email: str
    first_name: str = ""
    last_name: str = ""
    type: int = 1                # Zoom: 1 basic, 2 licensed
    status: str = "active"
    created_at: float = 0.0

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class AppType(StrEnum):
    """Zoom's two kinds of OAuth app this service knows: a Server-to-Server app gets account
    tokens (grant_type=account_credentials); a user-managed ("General") app gets tokens that act as
    the user who signed in (authorization code grant, refresh tokens, /oauth/revoke)."""

    SERVER_TO_SERVER = "server_to_server"
    USER_MANAGED = "user_managed"


@dataclass(frozen=True)
class App:
    client_id: str
    account_id: str
    name: str
    secret_hash: str                 # "" for a public client (no secret: PKCE instead)
    scopes: tuple[str, ...]
    permissions: tuple[str, ...] = ALL_PERMISSIONS
    active: bool = True
    created_at: float = 0.0
    app_type: AppType = AppType.SERVER_TO_SERVER
    redirect_uris: tuple[str, ...] = ()   # user-managed apps: the exact URIs a code may be sent to
    public_client: bool = False      # user-managed apps only: no secret, PKCE required

    @property
    def user_managed(self) -> bool:
        return self.app_type is AppType.USER_MANAGED


@dataclass(frozen=True)
class NewApp:
    """An app as created: the only moment its clear-text secret exists."""

    app: App
    client_secret: str = field(repr=False)
