"""What every registration machine of a process shares: the transports, the resolver, the timer
queue and the random source (see :class:`SipStack`)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from .manager import TransportManager
from .resolver import SipResolver
from .timers import TimerQueue
from .tls import TlsOptions

__all__ = ["SipStack"]


@dataclass
class SipStack:
    """What every machine of a process shares: the transports, the resolver, the random source."""

    transports: TransportManager
    resolver: SipResolver
    rng: random.Random = field(default_factory=random.SystemRandom)

    @classmethod
    def create(cls, *, ca_file: str | None = None, verify_tls: bool = True,
               nameservers: list[tuple[str, int]] | None = None, dns_timeout: float = 5.0,
               keepalive_interval: float | None = 90.0, keepalive_timeout: float = 10.0,
               idle_close: float = 30.0, bind_host: str = "0.0.0.0",
               rng: random.Random | None = None) -> "SipStack":
        transports = TransportManager(tls=TlsOptions(ca_file=ca_file, verify=verify_tls),
                                      keepalive_interval=keepalive_interval,
                                      keepalive_timeout=keepalive_timeout, idle_close=idle_close,
                                      bind_host=bind_host)
        resolver = SipResolver(nameservers, timeout=dns_timeout)
        return cls(transports=transports, resolver=resolver, rng=rng or random.SystemRandom())

    _timers: TimerQueue | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Set here too: dataclasses leaves an init=False default on the class, and an instance
        # of a mypyc-compiled class does not fall back to class attributes.
        self._timers = None

    def timer_queue(self, loop: asyncio.AbstractEventLoop | None = None) -> TimerQueue:
        """The shared timer of the running loop's machines (see ``sipphones.sipio.timers``);
        ``loop``: the running loop, when the caller has it at hand."""
        if loop is None:
            loop = asyncio.get_running_loop()
        queue = self._timers
        if queue is None or queue.loop is not loop:
            queue = self._timers = TimerQueue(loop)
        return queue

    async def close(self) -> None:
        await self.transports.close()
        if self._timers is not None:
            self._timers.close()
            self._timers = None
