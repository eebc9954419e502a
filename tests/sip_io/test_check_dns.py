"""``check`` with server names resolved through a real DNS server (RFC 3263), and DNS failures."""

from __future__ import annotations

import socket

import pytest

from sipphones.check.models import CheckResult
from sipphones.check.service import CheckOptions, check_phone
from sipphones.phones.models import Transport
from tests.peers.fixtures import SIP_DOMAIN, DnsZone, Naptr, Srv

from .helpers import phone

pytestmark = pytest.mark.peers


@pytest.fixture
def dns_for(dns_factory):
    """Serve records for sip.test (the domain) pointing at a kamailio instance."""
    def start(kam, *, naptr_services=("SIP+D2T",)):
        prefixes = {"SIP+D2U": "_sip._udp", "SIP+D2T": "_sip._tcp", "SIPS+D2T": "_sips._tcp"}
        ports = {"SIP+D2U": kam.udp_port, "SIP+D2T": kam.tcp_port, "SIPS+D2T": kam.tls_port}
        zone = DnsZone(
            hosts={"registrar.sip.test": [kam.address], SIP_DOMAIN: [kam.address]},
            srv=[Srv(f"{prefixes[s]}.{SIP_DOMAIN}", "registrar.sip.test", ports[s]) for s in prefixes],
            naptr=[Naptr(SIP_DOMAIN, 10, 10 + i, "s", s, f"{prefixes[s]}.{SIP_DOMAIN}")
                   for i, s in enumerate(naptr_services)],
        )
        return dns_factory(zone)
    return start


def options(dns, sip_pki=None, **kw) -> CheckOptions:
    return CheckOptions(server_budget=2.0, nameservers=(dns.nameserver,),
                        ca_file=str(sip_pki.ca_file) if sip_pki else None, dns_timeout=1.0, **kw)


async def test_auto_follows_naptr_to_tcp(kamailio, dns_for):
    dns = dns_for(kamailio, naptr_services=("SIP+D2T", "SIP+D2U"))
    report = await check_phone(phone((SIP_DOMAIN, Transport.AUTO)), options(dns))
    s = report.server(1)
    assert s.result is CheckResult.REGISTERED
    assert (s.transport, s.address) == ("TCP", kamailio.server("TCP"))


async def test_auto_follows_naptr_to_tls_and_verifies_the_domain_name(kamailio, dns_for, sip_pki):
    dns = dns_for(kamailio, naptr_services=("SIPS+D2T",))
    report = await check_phone(phone((SIP_DOMAIN, Transport.AUTO)), options(dns, sip_pki))
    s = report.server(1)
    assert s.result is CheckResult.REGISTERED, s
    assert (s.transport, s.address) == ("TLS", kamailio.server("TLS"))


async def test_explicit_transport_uses_its_srv_record(kamailio, dns_for):
    dns = dns_for(kamailio, naptr_services=())
    report = await check_phone(phone((SIP_DOMAIN, Transport.UDP)), options(dns))
    s = report.server(1)
    assert s.result is CheckResult.REGISTERED and s.address == kamailio.server("UDP")


async def test_name_with_port_resolves_the_address(kamailio, dns_for, sip_pki):
    dns = dns_for(kamailio)
    report = await check_phone(phone((f"registrar.sip.test:{kamailio.tls_port}", Transport.TLS)), options(dns, sip_pki))
    s = report.server(1)
    # the certificate is for sip.test and 127.0.0.1, not registrar.sip.test: verification is by name
    assert s.result is CheckResult.TLS_ERROR and "mismatch" in s.detail.lower()


async def test_unknown_name_is_a_dns_error(kamailio, dns_for):
    dns = dns_for(kamailio)
    report = await check_phone(phone(("nowhere.sip.test", Transport.AUTO), (kamailio.server("UDP"), Transport.UDP)),
                               options(dns))
    s = report.server(1)
    assert s.result is CheckResult.DNS_ERROR and s.dns_error == "nxdomain" and "nowhere.sip.test" in s.detail
    assert report.server(2).result is CheckResult.REGISTERED


async def test_silent_name_server_is_a_dns_timeout(kamailio):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.154", 0))
    try:
        opts = CheckOptions(server_budget=1.0, nameservers=(silent.getsockname(),), dns_timeout=0.4)
        report = await check_phone(phone((SIP_DOMAIN, Transport.UDP)), opts)
        s = report.server(1)
        assert s.result is CheckResult.DNS_ERROR and s.dns_error == "timeout"
    finally:
        silent.close()
