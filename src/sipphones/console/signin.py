"""Signing in to the console: an account id and the client id and secret of one of its apps,
checked as the token endpoint checks them (``AccountService.grant_account_credentials``), with
wrong secrets slowed down.

``SignInThrottle``: after ``FREE_FAILURES`` wrong attempts in a row for the same client id, each
further attempt for it must wait ``FIRST_WAIT * 2 ** (failures - FREE_FAILURES)``
seconds (5, 10, 20, 40, then ``MAX_WAIT``) after the last failure; an attempt made sooner is refused without the
secret being checked. A success clears the count. The counts live in this process (bounded to
``MAX_KEYS`` keys, the oldest forgotten first). Keyed by client id, not by address: an attacker
guessing one app's secret is slowed whatever address he uses, and admins sharing an address
(one office behind NAT) do not lock each other out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from sipphones.accounts.service import AccountService
from sipphones.auth.tokens import TokenService
from sipphones.errors import OAuthError

FREE_FAILURES = 3
FIRST_WAIT = 5.0
MAX_WAIT = 60.0
MAX_KEYS = 10_000
MAX_INPUT = 128  # characters of an account id, client id or secret


@dataclass
class _Failures:
    count: int
    last: float


class SignInThrottle:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, *keys: str) -> float:
        """Seconds to wait before an attempt for ``keys`` is checked (0: now)."""
        now = self._clock()
        longest = 0.0
        for key in keys:
            f = self._failures.get(key)
            if f is not None and f.count >= FREE_FAILURES:
                delay = min(FIRST_WAIT * 2.0 ** (f.count - FREE_FAILURES), MAX_WAIT)
                longest = max(longest, f.last + delay - now)
        return max(0.0, longest)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            f = self._failures.pop(key, None) or _Failures(0, now)
            f.count, f.last = f.count + 1, now
            self._failures[key] = f
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


class SignInRefused(Exception):
    """One sentence for the sign-in page."""


@dataclass(frozen=True)
class SignedIn:
    account_id: str
    client_id: str
    scopes: frozenset[str]
    permissions: frozenset[str]


async def sign_in(accounts: AccountService, tokens: TokenService, throttle: SignInThrottle, *, account_id: str,
                  client_id: str, client_secret: str) -> SignedIn:
    account_id, client_id = account_id.strip(), client_id.strip()
    if not account_id or not client_id or not client_secret:
        raise SignInRefused("Enter the account ID, the client ID and the client secret.")
    if max(len(account_id), len(client_id), len(client_secret)) > MAX_INPUT:
        raise SignInRefused(f"Each value is at most {MAX_INPUT} characters.")
    keys = ("client:" + client_id,)
    wait = throttle.wait(*keys)
    if wait > 0:
        raise SignInRefused(f"Too many wrong attempts: try again in {int(wait) + 1} seconds.")
    try:
        _, claims = await accounts.grant_account_credentials(tokens, client_id=client_id, client_secret=client_secret,
                                                             account_id=account_id)
    except OAuthError as e:
        throttle.failed(*keys)
        if e.code == 4717:
            raise SignInRefused("This app is disabled.") from None
        raise SignInRefused("The account ID, client ID or client secret is wrong.") from None
    throttle.succeeded(*keys)
    return SignedIn(claims.account_id, claims.client_id, frozenset(claims.scopes), frozenset(claims.permissions))
