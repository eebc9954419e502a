"""Which scopes and role permissions each operation accepts (Zoom's extract; the users endpoints as
Zoom's Users API: ``User:Read``/``User:Edit``; the check as an update of the phone)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sipphones.accounts.models import PERM_EDIT, PERM_READ, PERM_USER_EDIT, PERM_USER_READ


class Operation(StrEnum):
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    USERS_READ = "users_read"
    USERS_WRITE = "users_write"
    CHECK = "check"                  # this service's SIP check of one phone (api/check.py)
    USER_SELF = "user_self"          # GET /v2/users/me: the token's own user (user-managed apps)
    USER_GET = "user_get"            # GET /v2/users/{userId}: any user of the account


@dataclass(frozen=True)
class Requirement:
    scopes: tuple[str, ...]          # any one of them is enough (classic or granular)
    permission: str | None           # role permission the app must hold
    forbidden_code: int              # Zoom's 403 code when the permission is missing


SIP_PHONE_SCOPES = (
    "sip_phone:read:admin",
    "sip_phone:write:admin",
    "sip_phone:read:list_sip_phones:admin",
    "sip_phone:write:sip_phone:admin",
    "sip_phone:update:sip_phone:admin",
    "sip_phone:delete:sip_phone:admin",
)
USER_SCOPES = ("user:read:admin", "user:write:admin", "user:read:list_users:admin", "user:write:user:admin")
# Zoom's "Get a user": classic user:read (the user's own profile) / user:read:admin, granular
# user:read:user / user:read:user:admin. The user-level ones only ever reach ``me``.
USER_SELF_SCOPES = ("user:read", "user:read:user")
USER_ADMIN_READ_SCOPES = ("user:read:admin", "user:read:user:admin")

REQUIREMENTS: dict[Operation, Requirement] = {
    Operation.LIST: Requirement(("sip_phone:read:admin", "sip_phone:read:list_sip_phones:admin"), PERM_READ, 3306),
    Operation.CREATE: Requirement(("sip_phone:write:admin", "sip_phone:write:sip_phone:admin"), PERM_EDIT, 3306),
    Operation.UPDATE: Requirement(("sip_phone:write:admin", "sip_phone:update:sip_phone:admin"), PERM_EDIT, 3336),
    Operation.DELETE: Requirement(("sip_phone:write:admin", "sip_phone:delete:sip_phone:admin"), PERM_EDIT, 3336),
    Operation.USERS_READ: Requirement(("user:read:admin", "user:read:list_users:admin"), PERM_USER_READ, 3306),
    Operation.USERS_WRITE: Requirement(("user:write:admin", "user:write:user:admin"), PERM_USER_EDIT, 3306),
    # The check REGISTERs with the phone's stored credentials from this server: an action on the
    # phone, so the scopes and permission of updating it (not the list's read scope).
    Operation.CHECK: Requirement(("sip_phone:write:admin", "sip_phone:update:sip_phone:admin"), PERM_EDIT, 3336),
    # One's own profile needs a user scope and no role permission; another user's, the admin
    # scope and User:Read (api/users.py checks USER_GET when the user asked for is not the caller).
    Operation.USER_SELF: Requirement(USER_SELF_SCOPES + USER_ADMIN_READ_SCOPES, None, 3306),
    Operation.USER_GET: Requirement(USER_ADMIN_READ_SCOPES, PERM_USER_READ, 3306),
}

KNOWN_SCOPES = SIP_PHONE_SCOPES + USER_SCOPES + USER_SELF_SCOPES + ("user:read:user:admin",)
DEFAULT_APP_SCOPES = SIP_PHONE_SCOPES + USER_SCOPES
# A user-managed app by default: the SIP phone scopes (Zoom has admin-level ones only: the user
# who signs in acts on the account's phones) and reading the user's own profile.
DEFAULT_USER_APP_SCOPES = SIP_PHONE_SCOPES + USER_SELF_SCOPES


def parse_scopes(text: str) -> tuple[str, ...]:
    """Space- or comma-separated scopes, de-duplicated in order. Raises ValueError on unknown ones."""
    out: list[str] = []
    for part in text.replace(",", " ").split():
        if part not in KNOWN_SCOPES:
            raise ValueError(f"unknown scope '{part}' (known: {', '.join(KNOWN_SCOPES)})")
        if part not in out:
            out.append(part)
    if not out:
        raise ValueError("at least one scope is needed")
    return tuple(out)
