"""Locating SIP servers (RFC 3263 §4) with dnspython: next hop -> ordered list of targets.

What a server set's next hop turns into, by what the phone record says:

* an IP literal: that address; the transport given, or UDP for ``AUTO`` (§4.1); the port given,
  or the transport's default (5060, 5061 for TLS). No DNS.
* a host name with an explicit port: A/AAAA of the name at that port; UDP for ``AUTO``.
* a host name, no port, explicit transport: SRV ``_sip._udp`` / ``_sip._tcp`` / ``_sips._tcp`` of
  the name; if there is none, A/AAAA at the transport's default port.
* a host name, no port, ``AUTO``: NAPTR of the name, keeping the SIP+D2U / SIP+D2T / SIPS+D2T
  records with flag ``s`` in (order, preference) order, each followed to its SRV; if no usable
  NAPTR exists, the three SRV names above (UDP, TCP, TLS, in that order of preference); if
  none exists, A/AAAA with UDP on 5060.

SRV records are ordered by priority, and by the RFC 2782 weighted draw within a priority (the
random source is injectable). Each SRV target is resolved to its A then AAAA addresses. Every
target keeps the name it was found from as ``server_name``: the name a TLS certificate must
match and the SNI to send (RFC 5922 §4: the domain that was looked up, not the SRV target).

Failures are typed: :class:`DnsNameNotFound` (NXDOMAIN), :class:`DnsNoAddress` (the name exists
but has no usable record), :class:`DnsTimeout`, :class:`DnsServerFailure` (SERVFAIL, REFUSED, an
unreachable name server). A timeout or server failure during the NAPTR/SRV steps is not
mistaken for "no record": it ends the resolution, since the next queries would go to the same
silent server.

The name servers are configurable (``nameservers=[(host, port)]``), so tests point the
resolver at a DNS server of their own on loopback; by default the system's resolv.conf is used.
Answers are cached per (name, type) for their TTL, and concurrent identical queries share one
request, so thousands of phones on one domain cost one lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from sipphones.sip.address import HostPort, Transport
from sipphones.sip.config import Target, TargetTransport

__all__ = [
    "DnsError", "DnsNameNotFound", "DnsNoAddress", "DnsTimeout", "DnsServerFailure",
    "SipResolver", "NAPTR_SERVICES", "SRV_PREFIXES",
]

# RFC 3263 §4.1 NAPTR services and the transports they mean.
NAPTR_SERVICES = {
    "SIP+D2U": TargetTransport.UDP,
    "SIP+D2T": TargetTransport.TCP,
    "SIPS+D2T": TargetTransport.TLS,
}
SRV_PREFIXES = {
    TargetTransport.UDP: "_sip._udp.",
    TargetTransport.TCP: "_sip._tcp.",
    TargetTransport.TLS: "_sips._tcp.",
}
AUTO_SRV_ORDER = (TargetTransport.UDP, TargetTransport.TCP, TargetTransport.TLS)


class DnsError(Exception):
    """Resolution of a SIP server failed. ``kind`` is a stable short word for reports."""

    kind = "dns_error"

    def __init__(self, name: str, qtype: str, detail: str):
        self.name = name
        self.qtype = qtype
        self.detail = detail
        super().__init__(f"{qtype} {name}: {detail}")


class DnsNameNotFound(DnsError):
    kind = "nxdomain"


class DnsNoAddress(DnsError):
    kind = "no_answer"


class DnsTimeout(DnsError):
    kind = "timeout"


class DnsServerFailure(DnsError):
    kind = "server_failure"


@dataclass(frozen=True)
class _Srv:
    priority: int
    weight: int
    port: int
    target: str


def order_srv(records: list[_Srv], rng: random.Random) -> list[_Srv]:
    """RFC 2782 ordering: ascending priority; within one priority a weighted random draw."""
    out: list[_Srv] = []
    for prio in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == prio]
        # zero-weight records first so they keep a small chance, as RFC 2782 prescribes
        group.sort(key=lambda r: r.weight != 0)
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                out.extend(group)
                break
            pick = rng.uniform(0, total)
            running = 0
            for i, r in enumerate(group):
                running += r.weight
                if running >= pick:
                    out.append(group.pop(i))
                    break
    return out


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _display(name: str) -> str:
    return name[:-1] if name.endswith(".") else name


class SipResolver:
    """RFC 3263 server location. One instance can serve every phone of a process."""

    def __init__(self, nameservers: list[tuple[str, int]] | None = None, *, timeout: float = 5.0,
                 rng: random.Random | None = None, cache: bool = True):
        """``nameservers``: (address, port) pairs to query instead of /etc/resolv.conf.
        ``timeout``: the bound of one query, retries across servers included."""
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        resolver.timeout = min(timeout, 2.0)
        if cache:
            resolver.cache = dns.resolver.LRUCache(4096)
        self._resolver = resolver
        self._rng = rng or random.Random()
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}

    # --- public --------------------------------------------------------------------------

    async def resolve(self, hop: HostPort, transport: Transport | None) -> list[Target]:
        """The ordered targets to try for a next hop (see the module docstring for the rules)."""
        transport = transport or Transport.AUTO
        explicit = None if transport is Transport.AUTO else TargetTransport(transport.value)
        if hop.is_ip:
            t = explicit or TargetTransport.UDP
            return [Target(hop.host, hop.port or t.default_port, t, None)]
        name = hop.host
        if hop.port is not None:
            t = explicit or TargetTransport.UDP
            return [Target(a, hop.port, t, name) for a in await self._addresses(name)]
        if explicit is not None:
            targets = await self._srv_targets(SRV_PREFIXES[explicit] + name, explicit, name)
            if targets is not None:
                return targets
            return [Target(a, explicit.default_port, explicit, name) for a in await self._addresses(name)]
        targets = await self._naptr_targets(name)
        if targets is not None:
            return targets
        found: list[Target] = []
        any_srv = False
        for t in AUTO_SRV_ORDER:
            srv = await self._srv_targets(SRV_PREFIXES[t] + name, t, name)
            if srv is not None:
                any_srv = True
                found.extend(srv)
        if any_srv:
            return found
        return [Target(a, 5060, TargetTransport.UDP, name) for a in await self._addresses(name)]

    # --- steps ---------------------------------------------------------------------------

    async def _naptr_targets(self, name: str) -> list[Target] | None:
        """Targets from usable NAPTR records, or None when the name has none."""
        answer = await self._query(name, "NAPTR", missing_ok=True)
        if not answer:
            return None
        records = []
        for rr in answer:
            service = rr.service.decode(errors="replace").upper()
            flags = rr.flags.decode(errors="replace").lower()
            if service in NAPTR_SERVICES and flags == "s":
                records.append((rr.order, rr.preference, NAPTR_SERVICES[service], rr.replacement.to_text()))
        if not records:
            return None  # NAPTRs for other services only: RFC 3263 says fall back to SRV
        records.sort(key=lambda r: (r[0], r[1]))
        targets: list[Target] = []
        for _order, _pref, transport, replacement in records:
            srv = await self._srv_targets(replacement, transport, name)
            if srv:
                targets.extend(srv)
        if not targets:
            raise DnsNoAddress(name, "NAPTR", "no NAPTR record leads to an SRV with an address")
        return targets

    async def _srv_targets(self, srv_name: str, transport: TargetTransport, server_name: str) -> list[Target] | None:
        """Targets of one SRV name, or None when it has no SRV records."""
        answer = await self._query(srv_name, "SRV", missing_ok=True)
        if not answer:
            return None
        records = [_Srv(rr.priority, rr.weight, rr.port, rr.target.to_text()) for rr in answer]
        if len(records) == 1 and records[0].target == ".":
            return None  # RFC 2782: "service decidedly not available at this domain"
        targets: list[Target] = []
        last_error: DnsError | None = None
        for rec in order_srv([r for r in records if r.target != "."], self._rng):
            try:
                addrs = await self._addresses(rec.target)
            except (DnsNameNotFound, DnsNoAddress) as e:
                last_error = e
                continue
            targets.extend(Target(a, rec.port, transport, server_name) for a in addrs)
        if not targets:
            raise last_error or DnsNoAddress(_display(srv_name), "SRV", "no SRV target has an address")
        return targets

    async def _addresses(self, name: str) -> list[str]:
        """A then AAAA addresses of a name (IPv4 first); an IP literal is returned as is."""
        try:
            ipaddress.ip_address(name.rstrip("."))
            return [name.rstrip(".")]
        except ValueError:
            pass
        addrs: list[str] = []
        errors: list[DnsError] = []
        for qtype in ("A", "AAAA"):
            try:
                answer = await self._query(name, qtype, missing_ok=False)
            except (DnsNameNotFound, DnsNoAddress) as e:
                errors.append(e)
                if isinstance(e, DnsNameNotFound):
                    break  # the name does not exist: no point asking for AAAA
                continue
            addrs.extend(rr.address for rr in answer)
        if addrs:
            return addrs
        if any(isinstance(e, DnsNameNotFound) for e in errors):
            raise DnsNameNotFound(_display(name), "A", "the name does not exist (NXDOMAIN)")
        raise DnsNoAddress(_display(name), "A/AAAA", "the name has no address record")

    async def _query(self, name: str, qtype: str, *, missing_ok: bool):
        """One query, shared with identical concurrent queries. ``missing_ok``: NXDOMAIN and
        NODATA return None instead of raising."""
        key = (_fqdn(name).lower(), qtype)
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._query_once(key[0], qtype))
            self._inflight[key] = fut
            fut.add_done_callback(lambda f, k=key: self._query_done(k, f))
        try:
            return await asyncio.shield(fut)
        except (DnsNameNotFound, DnsNoAddress):
            if missing_ok:
                return None
            raise

    def _query_done(self, key: tuple[str, str], fut: asyncio.Future) -> None:
        self._inflight.pop(key, None)
        if not fut.cancelled():
            fut.exception()  # retrieved here so an unawaited failure is not logged as lost

    async def _query_once(self, name: str, qtype: str):
        shown = _display(name)
        try:
            return await self._resolver.resolve(dns.name.from_text(name), qtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise DnsNameNotFound(shown, qtype, "the name does not exist (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            raise DnsNoAddress(shown, qtype, f"no {qtype} record") from None
        except dns.exception.Timeout:
            raise DnsTimeout(shown, qtype, f"no answer from the name server within {self._resolver.lifetime:g}s") from None
        except dns.resolver.NoNameservers as e:
            raise DnsServerFailure(shown, qtype, f"the name server failed: {_first_line(e)}") from None
        except dns.exception.DNSException as e:
            raise DnsServerFailure(shown, qtype, _first_line(e)) from None


def _first_line(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]
