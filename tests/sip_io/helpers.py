"""Small builders shared by the SIP I/O tests."""

from __future__ import annotations

import hashlib
import itertools
import re

from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.sip.config import RegistrationPolicy, TransactionTimers

_ids = itertools.count(1)


def phone(*servers: tuple[str, Transport | None] | tuple[str, Transport | None, str], user: str = "alice",
          auth: str | None = None, password: str = "alicepw", domain: str = "sip.test",
          expire_minutes: int = 1, phone_id: str | None = None) -> SipPhone:
    """A phone whose server sets are (register_server, transport[, proxy_server]) tuples."""
    sets = []
    for s in servers:
        register, transport = s[0], s[1]
        proxy = s[2] if len(s) > 2 else ""
        sets.append(ServerSet(register_server=register, proxy_server=proxy, transport_protocol=transport))
    while len(sets) < 3:
        sets.append(ServerSet())
    return SipPhone(id=phone_id or f"phone-{next(_ids)}", account_id="acct", user_email=f"{user}@example.com",
                    user_name=user, authorization_name=auth or user, password=password, domain=domain,
                    servers=tuple(sets), registration_expire_time=expire_minutes)


def fast_policy(*, budget: float = 0.6, probe_interval: float = 0.5, retry_base: float = 0.5,
                refresh_margin: float = 60.0) -> RegistrationPolicy:
    """Short timers so failover, retries and fail-back happen within a test's patience."""
    return RegistrationPolicy(timers=TransactionTimers(t1=0.1, t2=0.4, budget=budget),
                              refresh_margin=refresh_margin, retry_base=retry_base, retry_max=2.0,
                              rejected_retry=30.0, probe_interval=probe_interval, resolve_timeout=2.0)


def header(message: str, name: str) -> list[str]:
    """Every value of a header (case-insensitive) in a traced message text."""
    out = []
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            out.append(value.strip())
    return out


def digest_params(value: str) -> dict[str, str]:
    return {k.lower(): (v1 or v2)
            for k, v1, v2 in re.findall(r'([A-Za-z0-9-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))', value)}


def expected_digest_response(p: dict[str, str], *, username: str, password: str, method: str = "REGISTER") -> str:
    """RFC 2617 MD5 response with qop=auth, computed independently of the code under test."""
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{username}:{p['realm']}:{password}")
    ha2 = md5(f"{method}:{p['uri']}")
    if p.get("qop"):
        return md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
    return md5(f"{ha1}:{p['nonce']}:{ha2}")
