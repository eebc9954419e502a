"""What the registration machine needs to know about one registering UA, in wire terms.

The core knows no phone record: ``sipphones.registration_config`` turns a stored phone (what an
admin typed into Zoom's API) into a :class:`RegistrationConfig` by these rules:

* Request-URI ``sip:<domain>``; To and From ``sip:<user_name>@<domain>`` with the user part
  %-escaped as RFC 3261 §25.1 requires (``"john doe"`` becomes ``john%20doe``); the digest
  user name is ``authorization_name`` and the realm is whatever the server challenges with.
* Up to three server sets, in slot order. The next hop of a set is its ``proxy_server`` when one is
  given (an outbound proxy, loose routing: the Request-URI stays ``sip:<domain>``), else its
  ``register_server``. When the proxy is a different host than the register server, the REGISTER
  carries ``Route: <sip:proxy;lr>`` (RFC 3261 §8.1.2 models an outbound proxy as a preloaded
  route; a loose-routing proxy recognises and strips its own entry, and a proxy that routes on the
  Request-URI ignores it). With no proxy, or a proxy equal to the register server, no Route is
  sent: a Route naming the registrar itself helps nothing and some registrars mishandle it.
  ``register_server`` is then only the default next hop; a proxy routes by the domain.
* Transport per set: ``UDP``, ``TCP``, ``TLS`` or ``AUTO`` (the adapter from a stored phone,
  ``sipphones.registration_config``, gives a set stored without one the domain's default, UDP,
  as the API shows it). ``AUTO`` with an IP literal or an explicit port is UDP
  (RFC 3263 §4.1); with a bare host name the driver resolves NAPTR/SRV/A/AAAA. Default ports are
  5060, and 5061 for TLS.
* ``Expires`` = ``registration_expire_time`` (minutes) × 60.

Nothing here does I/O: a next hop given as an IP literal becomes a target directly
(:meth:`ServerSetConfig.static_targets`); a host name is left for the driver to resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sipphones.sip.address import HostPort, Transport, format_host
from sipphones.sip.uri import SipUri

__all__ = [
    "ConfigError", "Target", "TargetTransport", "ServerSetConfig", "RegistrationConfig",
    "RegistrationPolicy", "TransactionTimers", "DEFAULT_USER_AGENT",
]

DEFAULT_USER_AGENT = "sipphones/0.1"
MAX_STALE_CONTACTS = 4  # stale contacts one configuration may ask the registrars to drop


class ConfigError(ValueError):
    """The phone record cannot be turned into a registration (no server, unparsable address)."""


class TargetTransport(StrEnum):
    """A concrete transport of a resolved target (``AUTO`` never reaches the wire)."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def reliable(self) -> bool:
        """TCP and TLS deliver reliably: no retransmission timers (RFC 3261 §17.1.2.2)."""
        return self is not TargetTransport.UDP

    @property
    def default_port(self) -> int:
        return 5061 if self is TargetTransport.TLS else 5060


@dataclass(frozen=True)
class Target:
    """One address to send to: what the driver connects to and what ``Send`` names.

    ``server_name`` is the host name the target was resolved from (the name to verify a TLS
    certificate against and to send as SNI); ``None`` when the server was given as an IP literal.
    """

    host: str
    port: int
    transport: TargetTransport
    server_name: str | None = None

    def __post_init__(self) -> None:
        # Targets key the flow and avoidance tables and are hashed several times per message.
        self._hash: int   # declared, not a field (a compiled class has no __dict__)
        object.__setattr__(self, "_hash", hash((self.host, self.port, self.transport, self.server_name)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # What @dataclass generates (compared field by field), compiled, and first by identity:
        # equal targets are shared, and this runs several times per message.
        if other is self:
            return True
        if not isinstance(other, Target) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.host == other.host and self.port == other.port and self.transport == other.transport
                and self.server_name == other.server_name)

    def __reduce__(self):
        # Rebuilt from the fields (string hashes differ between processes).
        return (type(self), (self.host, self.port, self.transport, self.server_name))

    def __str__(self) -> str:
        return f"{format_host(self.host)}:{self.port};transport={self.transport.value.lower()}"


@dataclass(frozen=True)
class TransactionTimers:
    """RFC 3261 §17.1.2 timer values (seconds) plus the per-server budget.

    ``budget`` ends a transaction with a timeout after this many seconds even though Timer F
    (64·T1 = 32 s by default) has not fired, so that failover to the next server does not wait
    32 s. ``None`` keeps the RFC behaviour. It bounds each transaction (and each connection
    attempt) separately: a server that answered a challenge has proved it is alive, so the
    authenticated retry gets the full budget again.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    budget: float | None = None

    def __post_init__(self) -> None:
        if self.t1 <= 0 or self.t2 < self.t1 or self.t4 < 0:
            raise ConfigError("timers must satisfy 0 < T1 <= T2 and T4 >= 0")
        if self.budget is not None and self.budget <= 0:
            raise ConfigError("the per-server budget must be positive")

    @property
    def timer_f(self) -> float:
        return 64 * self.t1

    @property
    def response_timeout(self) -> float:
        """How long a transaction waits for a final response: Timer F or the budget if shorter."""
        return self.timer_f if self.budget is None else min(self.budget, self.timer_f)


@dataclass(frozen=True)
class ServerSetConfig:
    """One numbered server set (slot 1..3) in wire terms."""

    slot: int
    register_server: HostPort
    proxy_server: HostPort | None
    transport: Transport
    route: str | None = None  # the Route header value to send, if any

    @property
    def next_hop(self) -> HostPort:
        return self.proxy_server if self.proxy_server is not None else self.register_server

    def static_targets(self) -> list[Target] | None:
        """The targets of a next hop given as an IP literal (no DNS needed), else ``None``.

        RFC 3263 §4.1/4.2: an IP literal with ``AUTO`` means UDP; the port defaults to the
        transport's default. A host name, even with an explicit transport, needs the driver
        (A/AAAA, and SRV when no port is given).
        """
        hop = self.next_hop
        if not hop.is_ip:
            return None
        transport = (TargetTransport.UDP if self.transport is Transport.AUTO
                     else TargetTransport(self.transport.value))
        return [_shared(Target(hop.host, hop.port or transport.default_port, transport))]


# Equal targets are one object: a fleet registering with one registrar holds one Target, not one
# per phone (bounded; Target is immutable, so sharing is invisible).
_TARGETS: dict[Target, Target] = {}


def _shared(target: Target) -> Target:
    found = _TARGETS.get(target)
    if found is not None:
        return found
    if len(_TARGETS) >= 4096:
        _TARGETS.clear()
    _TARGETS[target] = target
    return target


@dataclass(frozen=True)
class RegistrationConfig:
    """Everything the machine sends about one phone. ``password`` never appears in repr."""

    user: str                 # user_name as stored (unescaped)
    domain: str               # the SIP domain, host only (an IPv6 literal without brackets)
    auth_username: str        # authorization_name
    password: str = field(repr=False)
    expires: int = 3600       # seconds asked for in REGISTER
    server_sets: tuple[ServerSetConfig, ...] = ()
    user_agent: str = DEFAULT_USER_AGENT
    phone_id: str | None = None
    # Contacts another instance of this phone left at the registrars (a monitor that died while
    # keeping it): the first REGISTER of each set lists them with ``;expires=0`` so the registrar
    # drops them with the same request that binds ours. At most MAX_STALE_CONTACTS.
    stale_contacts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.server_sets:
            raise ConfigError("no server set is configured")
        if self.expires <= 0:
            raise ConfigError("expires must be positive")
        if len(self.stale_contacts) > MAX_STALE_CONTACTS:
            raise ConfigError(f"at most {MAX_STALE_CONTACTS} stale contacts")
        stale: list[SipUri] = []
        for text in self.stale_contacts:
            try:
                stale.append(SipUri.parse(text))
            except ValueError as e:
                raise ConfigError(f"stale contact {text[:80]!r}: {e}") from None
        self._stale: tuple[SipUri, ...]
        object.__setattr__(self, "_stale", tuple(stale))
        # Derived once: every REGISTER of the phone writes them. Plain attributes, not fields
        # (equality, repr and replace() see only the fields).
        self._request_uri: str
        self._aor: str
        self._slots: tuple[int, ...]
        object.__setattr__(self, "_request_uri", str(SipUri(host=self.domain)))
        object.__setattr__(self, "_aor", str(SipUri(host=self.domain, user=self.user)))
        object.__setattr__(self, "_slots", tuple(s.slot for s in self.server_sets))

    @property
    def stale(self) -> tuple[SipUri, ...]:
        """``stale_contacts`` parsed."""
        return self._stale

    @property
    def request_uri(self) -> str:
        return self._request_uri

    @property
    def aor(self) -> str:
        """The address of record, used in To and From (user part %-escaped)."""
        return self._aor

    def server_set(self, slot: int) -> ServerSetConfig:
        for s in self.server_sets:
            if s.slot == slot:
                return s
        raise KeyError(slot)

    @property
    def slots(self) -> list[int]:
        """The configured slot numbers in order (a new list: callers may change it)."""
        return list(self._slots)


@dataclass(frozen=True)
class RegistrationPolicy:
    """Timing decisions of the registration machine (seconds). Defaults suit a desk phone.

    * Refresh: at ``max(granted / 2, granted - refresh_margin)`` after the REGISTER was sent
      (Polycom's rule: a margin before expiry, half the time when the grant is short), made
      earlier by up to ``jitter`` × that delay (drawn from the injected random source) so a fleet
      does not refresh in lock-step. Jitter never makes a refresh later.
    * Failover retry: when every server set failed, start again from set 1 after
      ``retry_base`` seconds, doubling per consecutive failed round up to ``retry_max``.
    * After a definitive rejection (403, a second challenge, 404, 6xx) no other set is tried
      (the credentials or the user are wrong, and hammering a PBX with bad credentials gets the
      address banned by fail2ban-style protections); the next attempt is ``rejected_retry`` later.
    * Fail-back: while registered on a set other than the first available one, the preferred
      sets are probed every ``probe_interval`` seconds with a real REGISTER; a 200 moves the
      registration back and un-registers from the backup.
    * ``resolve_timeout`` bounds the driver's DNS work; connection attempts are bounded by the
      transaction timers' response timeout (the budget, or 64·T1).
    * ``max_stale_retries``: how many ``stale=true`` challenges in a row are answered without
      counting as a rejection (a server that keeps saying stale is broken).
    * ``max_retry_after``: the longest a ``Retry-After`` keeps a server out of use; a longer one
      is cut to it (and reported: :class:`~sipphones.sip.events.RetryAfterCapped`), so one
      absurd header cannot retire a server for good.
    * ``sequence_budget``: when set, the most one REGISTER sequence may take on one target of a
      server set in all (connection, every transaction: challenges, a 423 retry); the check sets
      it so that its timeout is a hard bound per server. ``None``: only the per-transaction
      timers bound it (and the number of challenges and retries).
    """

    timers: TransactionTimers = TransactionTimers()
    refresh_margin: float = 60.0
    jitter: float = 0.0
    retry_base: float = 30.0
    retry_max: float = 600.0
    rejected_retry: float = 1800.0
    probe_interval: float = 120.0
    resolve_timeout: float = 10.0
    max_stale_retries: int = 2
    reuse_credentials: bool = True
    max_retry_after: float = 3600.0
    sequence_budget: float | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= self.jitter < 1.0):
            raise ConfigError("jitter must be a fraction in [0, 1)")
        for name in ("refresh_margin", "retry_base", "retry_max", "rejected_retry", "probe_interval",
                     "resolve_timeout", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.max_stale_retries < 0:
            raise ConfigError("max_stale_retries must not be negative")
        if self.sequence_budget is not None and not self.sequence_budget > 0:
            raise ConfigError("sequence_budget must be positive")

    def refresh_delay(self, granted: float) -> float:
        """Delay from sending the REGISTER to sending its refresh, before jitter."""
        return max(granted / 2.0, granted - self.refresh_margin)
