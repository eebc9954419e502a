"""The test peers themselves: if these fail, the SIP tests' verdicts mean nothing."""

from __future__ import annotations

import socket
import sqlite3
import ssl

import pytest

from tests.peers.fixtures import SIP_DOMAIN, TEST_USERS
from tests.peers.kamailio import options_probe
from tests.peers.procs import is_bound
from tests.peers.sipp import SCENARIOS

pytestmark = pytest.mark.peers


def test_kamailio_answers_on_udp_and_tcp(kamailio):
    assert options_probe(kamailio.address, kamailio.udp_port, "udp") == 200
    assert options_probe(kamailio.address, kamailio.tcp_port, "tcp") == 200
    assert kamailio.udp_port != 5060 and kamailio.tls_port != 5061


def test_kamailio_user_table_holds_no_plaintext_password(kamailio):
    db = kamailio.process.cwd / "users.sqlite"
    rows = sqlite3.connect(db).execute("SELECT username, password, ha1 FROM subscriber").fetchall()
    assert len(rows) >= len(TEST_USERS)
    assert all(password == "" and len(ha1) == 32 for _, password, ha1 in rows)
    assert not any(u.password.encode() in db.read_bytes() for u in TEST_USERS)


def test_kamailio_tls_certificate_verifies_for_ip_and_name(kamailio, sip_pki):
    ctx = ssl.create_default_context(cafile=str(sip_pki.ca_file))
    for name in ("127.0.0.1", SIP_DOMAIN):
        with socket.create_connection((kamailio.address, kamailio.tls_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_kamailio_certificate_is_not_trusted_without_the_test_ca(kamailio):
    ctx = ssl.create_default_context()  # the system store knows nothing of the test CA
    with socket.create_connection((kamailio.address, kamailio.tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.mark.parametrize("scenario", sorted(p.stem for p in SCENARIOS.glob("*.xml")))
def test_every_sipp_scenario_loads_and_binds(sipp_factory, scenario):
    variables = {"user": "alice", "password": "alicepw"} if scenario in ("registrar", "stale_nonce") else None
    server = sipp_factory(scenario, address="127.0.0.2", variables=variables)
    assert server.process.alive()
    assert is_bound("udp", server.address, server.port)


def test_sipp_peer_is_killed_at_teardown(sipp_factory):
    server = sipp_factory("blackhole", address="127.0.0.2")
    server.stop()
    assert not server.process.alive()
    assert not is_bound("udp", server.address, server.port)


def test_dns_server_listens_on_loopback_only(dns_factory):
    from tests.peers.dns import DnsZone
    from tests.peers.procs import _proc_net_entries
    server = dns_factory(DnsZone(hosts={"x.test": ["127.0.0.1"]}))
    bound = {(addr, port) for addr, port, _ in _proc_net_entries("udp") | _proc_net_entries("udp6")
             if port == server.port}
    assert bound == {(server.address, server.port)}
