"""The registration check as a domain service: phones in, :class:`CheckReport` out.

For each phone: build its wire configuration (``sipphones.registration_config``), run a
:class:`~sipphones.sip.registration_check.RegistrationCheck` through the asyncio driver (register on
every configured server set in order, un-register right after each success), and turn the
per-set results into the report. Phones come from the caller (a list, or any async iterable,
e.g. a repository query), so the service needs no storage of its own.

Several phones are checked concurrently (``concurrency``) over one shared
:class:`~sipphones.sipio.stack.SipStack`: one socket per registrar, not per phone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from typing import AsyncIterable, Iterable

from sipphones.phones.models import SipPhone
from sipphones.registration_config import registration_config
from sipphones.sip.config import (
    DEFAULT_USER_AGENT,
    ConfigError,
    RegistrationConfig,
    RegistrationPolicy,
    TransactionTimers,
)
from sipphones.sip.events import ResultKind, SlotResult
from sipphones.sipio.runner import CheckRun, run_check
from sipphones.sipio.stack import SipStack

from .models import CheckReport, CheckResult, ServerSetCheck

__all__ = ["CheckOptions", "CheckService", "check_phone", "check_phones"]


@dataclass(frozen=True)
class CheckOptions:
    """How a check runs.

    ``server_budget``: seconds one server may take, in all, to register us (every transaction
    of the sequence: challenges, a 423 retry) before the check moves on (instead of RFC 3261's
    32 s Timer F per transaction); the un-REGISTER after a success gets as long again.
    ``expires``: seconds to ask for (None: the phone's registration_expire_time). ``all_slots``:
    check every set (False: stop at the first that registers). ``timeout``: hard bound of one
    phone's whole check (None: :meth:`deadline` derives it from the budget); the un-REGISTER of
    what a cut check may have left bound gets ``server_budget`` more. ``ca_file`` /
    ``verify_tls``: TLS trust. ``nameservers``: DNS servers as (host, port) instead of the system's.
    """

    server_budget: float = 5.0
    t1: float = 0.5
    expires: int | None = None
    all_slots: bool = True
    timeout: float | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    nameservers: tuple[tuple[str, int], ...] | None = None
    dns_timeout: float = 5.0
    user_agent: str = DEFAULT_USER_AGENT
    concurrency: int = 20

    def policy(self) -> RegistrationPolicy:
        timers = TransactionTimers(t1=self.t1, t2=max(4.0, self.t1), budget=self.server_budget)
        return RegistrationPolicy(timers=timers, resolve_timeout=self.dns_timeout * 3,
                                  sequence_budget=self.server_budget)

    def deadline(self, config: RegistrationConfig) -> float:
        """The hard bound of one phone's check: ``timeout``, or per server set twice the budget
        (register, un-register) plus the DNS bound for a set named by a host name."""
        if self.timeout is not None:
            return self.timeout
        total = 0.0
        for server in config.server_sets:
            total += 2 * self.server_budget
            if not server.next_hop.is_ip:
                total += self.dns_timeout * 3
        return total

    def stack(self) -> SipStack:
        return SipStack.create(ca_file=self.ca_file, verify_tls=self.verify_tls,
                               nameservers=list(self.nameservers) if self.nameservers else None,
                               dns_timeout=self.dns_timeout, idle_close=1.0)


_RESULT_BY_KIND = {
    ResultKind.REGISTERED: CheckResult.REGISTERED,
    ResultKind.AUTH_REJECTED: CheckResult.AUTH_REJECTED,
    ResultKind.NOT_FOUND: CheckResult.NOT_FOUND,
    ResultKind.TIMEOUT: CheckResult.TIMEOUT,
    ResultKind.CONNECTION_REFUSED: CheckResult.CONNECTION_REFUSED,
    ResultKind.TLS_ERROR: CheckResult.TLS_ERROR,
    ResultKind.DNS_ERROR: CheckResult.DNS_ERROR,
    ResultKind.TRANSPORT_ERROR: CheckResult.TRANSPORT_ERROR,
    ResultKind.SERVER_ERROR: CheckResult.SERVER_ERROR,
    ResultKind.INTERVAL_TOO_BRIEF: CheckResult.INTERVAL_TOO_BRIEF,
    ResultKind.REJECTED: CheckResult.REJECTED,
    ResultKind.DECLINED: CheckResult.DECLINED,
    ResultKind.AUTH_UNSUPPORTED: CheckResult.AUTH_UNSUPPORTED,
    ResultKind.NOT_TRIED: CheckResult.NOT_TRIED,
}


def _server_set_check(r: SlotResult, run: CheckRun) -> ServerSetCheck:
    result = _RESULT_BY_KIND.get(r.kind, CheckResult.REJECTED)
    detail = r.detail
    malformed = run.malformed.get(r.slot)
    if malformed and result in (CheckResult.TIMEOUT, CheckResult.TRANSPORT_ERROR):
        # The server did answer, with bytes that are not SIP: say so rather than "timeout".
        result = CheckResult.PROTOCOL_ERROR
        detail = f"{malformed}; {detail}" if detail and detail not in malformed else malformed
    dns = run.dns_errors.get(r.slot)
    seen = run.seen_via.get(r.slot)
    unreg = r.unregister
    return ServerSetCheck(
        slot=r.slot, server=r.server, configured_transport=r.transport.value, result=result,
        address=f"{r.target.host}:{r.target.port}" if r.target else None,
        transport=r.target.transport.value if r.target else None,
        sip_status=r.status, reason=r.reason,
        rtt_ms=round(r.rtt * 1000.0, 3) if r.rtt is not None else None,
        granted_expires=r.expires if result is CheckResult.REGISTERED else None,
        detail=detail,
        unregistered=(unreg.ok if unreg is not None else None),
        unregister_status=(unreg.status if unreg is not None else None),
        seen_as=(f"{seen[0] or '?'}:{seen[1] or '?'}" if seen else None),
        dns_error=(dns.kind if dns is not None and result is CheckResult.DNS_ERROR else None),
    )


class CheckService:
    """Checks phones over one shared SIP stack. Use as an async context manager, or ``close()``."""

    def __init__(self, options: CheckOptions = CheckOptions(), *, stack: SipStack | None = None):
        self.options = options
        self._own_stack = stack is None
        self._stack = stack

    @property
    def stack(self) -> SipStack:
        if self._stack is None:
            self._stack = self.options.stack()
        return self._stack

    async def __aenter__(self) -> "CheckService":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_stack and self._stack is not None:
            await self._stack.close()
            self._stack = None

    async def check(self, phone: SipPhone) -> CheckReport:
        started_wall = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        started = time.perf_counter()
        try:
            config = registration_config(phone, user_agent=self.options.user_agent, expires=self.options.expires)
        except ConfigError as e:
            return CheckReport(phone_id=phone.id, user_name=phone.user_name, domain=phone.domain,
                               checked_at=started_wall, duration_ms=0.0, servers=(),
                               error=f"config_error: {e}", user_email=phone.user_email)
        run = await run_check(self.stack, config, policy=self.options.policy(),
                              all_slots=self.options.all_slots, timeout=self.options.deadline(config),
                              stop_grace=self.options.server_budget)
        servers = tuple(_server_set_check(r, run) for r in run.results)
        return CheckReport(phone_id=phone.id, user_name=phone.user_name, domain=phone.domain,
                           checked_at=started_wall,
                           duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
                           servers=servers,
                           error=None if run.completed else "the check did not finish within its timeout",
                           user_email=phone.user_email)

    async def check_all(self, phones: Iterable[SipPhone] | AsyncIterable[SipPhone]) -> list[CheckReport]:
        """Check every phone (``concurrency`` at a time); reports come back in input order."""
        limit = asyncio.Semaphore(max(1, self.options.concurrency))

        async def one(phone: SipPhone) -> CheckReport:
            async with limit:
                return await self.check(phone)

        tasks: list[asyncio.Task] = []
        if hasattr(phones, "__aiter__"):
            async for phone in phones:  # type: ignore[union-attr]
                tasks.append(asyncio.ensure_future(one(phone)))
        else:
            tasks = [asyncio.ensure_future(one(p)) for p in phones]  # type: ignore[union-attr]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for t in tasks:
                t.cancel()


async def check_phone(phone: SipPhone, options: CheckOptions = CheckOptions(), *,
                      stack: SipStack | None = None) -> CheckReport:
    """Check one phone (see :class:`CheckService`)."""
    async with CheckService(options, stack=stack) as service:
        return await service.check(phone)


async def check_phones(phones: Iterable[SipPhone] | AsyncIterable[SipPhone],
                       options: CheckOptions = CheckOptions(), *,
                       stack: SipStack | None = None) -> list[CheckReport]:
    async with CheckService(options, stack=stack) as service:
        return await service.check_all(phones)
