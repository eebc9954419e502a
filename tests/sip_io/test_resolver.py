"""RFC 3263 server location against a real DNS server (dnsmasq on 127.0.0.153, started here)."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest

from sipphones.phones.models import Transport
from sipphones.phones.rules import parse_host
from sipphones.sip.config import Target, TargetTransport
from sipphones.sipio.resolver import (
    DnsNameNotFound,
    DnsNoAddress,
    DnsServerFailure,
    DnsTimeout,
    SipResolver,
    _Srv,
    order_srv,
)
from tests.peers.fixtures import DnsZone, Naptr, Srv

pytestmark = pytest.mark.peers

UDP, TCP, TLS = TargetTransport.UDP, TargetTransport.TCP, TargetTransport.TLS

ZONE = DnsZone(
    zones=["test"],
    hosts={
        "a.example.test": ["127.0.0.11"],
        "b.example.test": ["127.0.0.12", "::1"],
        "c.example.test": ["127.0.0.13"],
        "srvonly.test": ["127.0.0.99"],       # must be ignored: SRV wins
        "plain.test": ["127.0.0.14"],
        "naptr-other.test": ["127.0.0.15"],
    },
    srv=[
        # NAPTR domain: UDP and TLS services, TLS preferred by NAPTR preference
        Srv("_sip._udp.example.test", "a.example.test", 5070, 10, 10),
        Srv("_sips._tcp.example.test", "b.example.test", 5071, 10, 10),
        # SRV-only domain: TCP at two priorities, UDP too
        Srv("_sip._tcp.srvonly.test", "c.example.test", 5081, 20, 10),
        Srv("_sip._tcp.srvonly.test", "a.example.test", 5080, 10, 10),
        Srv("_sip._udp.srvonly.test", "c.example.test", 5082, 10, 10),
        # an SRV whose target does not exist, next to one that does
        Srv("_sip._udp.halfbroken.test", "gone.example.test", 5090, 10, 10),
        Srv("_sip._udp.halfbroken.test", "a.example.test", 5091, 20, 10),
    ],
    naptr=[
        Naptr("example.test", 10, 20, "s", "SIP+D2U", "_sip._udp.example.test"),
        Naptr("example.test", 10, 10, "s", "SIPS+D2T", "_sips._tcp.example.test"),
        # a NAPTR for a service that is not SIP: RFC 3263 says fall back to SRV / A
        Naptr("naptr-other.test", 10, 10, "u", "E2U+sip", "!^.*$!sip:x@example.test!", ""),
    ],
    empty_names=["noaddr.test"],
)


@pytest.fixture
def dns_server(dns_factory):
    return dns_factory(ZONE)


@pytest.fixture
def resolver(dns_server):
    return SipResolver([dns_server.nameserver], timeout=2.0, rng=random.Random(1))


def queries(dns_server) -> list[str]:
    """The queries dnsmasq logged, as 'TYPE name'."""
    out = []
    for line in dns_server.process.log_text().splitlines():
        if "query[" in line:
            qtype = line.split("query[", 1)[1].split("]", 1)[0]
            name = line.split("] ", 1)[1].split(" from ", 1)[0]
            out.append(f"{qtype} {name}")
    return out


async def resolve(resolver, text: str, transport: Transport | None) -> list[Target]:
    return await resolver.resolve(parse_host(text), transport)


async def test_auto_follows_naptr_then_srv_then_addresses(resolver, dns_server):
    targets = await resolve(resolver, "example.test", Transport.AUTO)
    # NAPTR preference 10 (SIPS+D2T) before 20 (SIP+D2U); each SRV target's A then AAAA.
    assert targets == [
        Target("127.0.0.12", 5071, TLS, "example.test"),
        Target("::1", 5071, TLS, "example.test"),
        Target("127.0.0.11", 5070, UDP, "example.test"),
    ]
    q = queries(dns_server)
    assert q[0] == "NAPTR example.test"
    assert "SRV _sips._tcp.example.test" in q and "SRV _sip._udp.example.test" in q


async def test_auto_without_naptr_uses_srv_of_every_transport(resolver, dns_server):
    targets = await resolve(resolver, "srvonly.test", None)
    # UDP SRV first (preference UDP, TCP, TLS), then TCP by priority 10 before 20
    assert targets == [
        Target("127.0.0.13", 5082, UDP, "srvonly.test"),
        Target("127.0.0.11", 5080, TCP, "srvonly.test"),
        Target("127.0.0.13", 5081, TCP, "srvonly.test"),
    ]
    assert "A srvonly.test" not in queries(dns_server)


async def test_auto_with_non_sip_naptr_falls_back_to_address_udp_5060(resolver):
    assert await resolve(resolver, "naptr-other.test", Transport.AUTO) == [
        Target("127.0.0.15", 5060, UDP, "naptr-other.test")]


async def test_auto_without_naptr_or_srv_is_udp_5060_on_the_address(resolver, dns_server):
    assert await resolve(resolver, "plain.test", Transport.AUTO) == [Target("127.0.0.14", 5060, UDP, "plain.test")]
    q = queries(dns_server)
    assert q[:4] == ["NAPTR plain.test", "SRV _sip._udp.plain.test", "SRV _sip._tcp.plain.test", "SRV _sips._tcp.plain.test"]


async def test_explicit_transport_uses_its_srv_only(resolver, dns_server):
    assert await resolve(resolver, "srvonly.test", Transport.TCP) == [
        Target("127.0.0.11", 5080, TCP, "srvonly.test"),
        Target("127.0.0.13", 5081, TCP, "srvonly.test"),
    ]
    assert not any(q.startswith("NAPTR") for q in queries(dns_server))


async def test_explicit_transport_without_srv_uses_the_default_port(resolver):
    assert await resolve(resolver, "plain.test", Transport.TLS) == [Target("127.0.0.14", 5061, TLS, "plain.test")]
    assert await resolve(resolver, "plain.test", Transport.TCP) == [Target("127.0.0.14", 5060, TCP, "plain.test")]


async def test_explicit_port_means_address_lookup_and_udp_for_auto(resolver, dns_server):
    assert await resolve(resolver, "srvonly.test:5099", Transport.AUTO) == [Target("127.0.0.99", 5099, UDP, "srvonly.test")]
    assert await resolve(resolver, "srvonly.test:5099", Transport.TLS) == [Target("127.0.0.99", 5099, TLS, "srvonly.test")]
    assert not any(q.startswith(("NAPTR", "SRV")) for q in queries(dns_server))


async def test_ip_literals_need_no_dns():
    # A resolver pointed at a port where nothing answers: any query would fail.
    dead = SipResolver([("127.0.0.154", 9)], timeout=0.3)
    assert await dead.resolve(parse_host("127.0.0.9"), Transport.AUTO) == [Target("127.0.0.9", 5060, UDP, None)]
    assert await dead.resolve(parse_host("127.0.0.9:5999"), None) == [Target("127.0.0.9", 5999, UDP, None)]
    assert await dead.resolve(parse_host("[::1]"), Transport.TLS) == [Target("::1", 5061, TLS, None)]


async def test_srv_target_without_address_is_skipped(resolver):
    assert await resolve(resolver, "halfbroken.test", Transport.UDP) == [Target("127.0.0.11", 5091, UDP, "halfbroken.test")]


async def test_nxdomain_is_typed(resolver):
    with pytest.raises(DnsNameNotFound) as e:
        await resolve(resolver, "missing.test", Transport.AUTO)
    assert e.value.kind == "nxdomain" and e.value.name == "missing.test"


async def test_name_without_address_is_no_answer(resolver):
    with pytest.raises(DnsNoAddress) as e:
        await resolve(resolver, "noaddr.test:5060", Transport.UDP)
    assert e.value.kind == "no_answer"


async def test_refused_query_is_a_server_failure(resolver):
    # dnsmasq has no upstream and refuses names outside its zones (nothing leaves the machine)
    with pytest.raises(DnsServerFailure) as e:
        await resolve(resolver, "sip.example.org", Transport.AUTO)
    assert e.value.kind == "server_failure"


async def test_silent_name_server_is_a_timeout():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.154", 0))  # bound, never read: queries vanish
    try:
        resolver = SipResolver([silent.getsockname()], timeout=0.4)
        started = time.monotonic()
        with pytest.raises(DnsTimeout) as e:
            await resolver.resolve(parse_host("example.test"), Transport.AUTO)
        assert e.value.kind == "timeout"
        assert time.monotonic() - started < 2.0  # one query's lifetime, not one per step
    finally:
        silent.close()


async def test_concurrent_identical_lookups_share_one_query(dns_server):
    resolver = SipResolver([dns_server.nameserver], timeout=2.0, cache=False)
    results = await asyncio.gather(*(resolver.resolve(parse_host("plain.test:5060"), Transport.UDP) for _ in range(50)))
    assert all(r == [Target("127.0.0.14", 5060, UDP, "plain.test")] for r in results)
    assert queries(dns_server).count("A plain.test") == 1


def test_srv_order_is_by_priority_then_weighted():
    records = [_Srv(20, 0, 1, "z."), _Srv(10, 90, 2, "heavy."), _Srv(10, 10, 3, "light."), _Srv(10, 0, 4, "zero.")]
    firsts = {"heavy.": 0, "light.": 0, "zero.": 0}
    rng = random.Random(7)
    for _ in range(2000):
        ordered = order_srv(records, rng)
        assert ordered[-1].target == "z."                      # priority 20 always last
        assert {r.target for r in ordered[:3]} == {"heavy.", "light.", "zero."}
        firsts[ordered[0].target] += 1
    assert firsts["heavy."] > firsts["light."] > firsts["zero."]
    assert firsts["heavy."] > 1500
