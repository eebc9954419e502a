"""``check`` against a real kamailio registrar: UDP, TCP and TLS, credentials, TLS trust."""

from __future__ import annotations

import json
import time

import pytest

from sipphones.check.models import CheckResult
from sipphones.check.service import CheckOptions, CheckService, check_phone
from sipphones.phones.models import Transport
from sipphones.sipio.stack import SipStack
from tests.peers.fixtures import SIP_DOMAIN, free_port

from .helpers import phone

pytestmark = pytest.mark.peers


def options(sip_pki=None, **kw) -> CheckOptions:
    kw.setdefault("server_budget", 2.0)
    return CheckOptions(ca_file=str(sip_pki.ca_file) if sip_pki else None, **kw)


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS"])
async def test_registers_and_unregisters_over_each_transport(kamailio, sip_pki, transport):
    p = phone((kamailio.server(transport), Transport(transport)), user="bob", password="bobpw")
    report = await check_phone(p, options(sip_pki))
    s = report.server(1)
    assert s.result is CheckResult.REGISTERED, s
    assert (s.address, s.transport) == (kamailio.server(transport), transport)
    assert s.sip_status == 200 and s.rtt_ms is not None and 0 < s.rtt_ms < 2000
    assert s.granted_expires == 60              # registration_expire_time 1 minute, as asked
    assert s.unregistered is True and s.unregister_status == 200
    assert s.seen_as and s.seen_as.endswith(tuple(":" + str(n) for n in range(1, 65536)))  # rport filled in
    assert report.ok and report.registered_anywhere
    assert kamailio.contacts("bob") == []       # the un-REGISTER removed the binding


async def test_every_server_set_is_checked_in_order(kamailio, sip_pki):
    p = phone((kamailio.server("UDP"), Transport.UDP), (kamailio.server("TCP"), Transport.TCP),
              (kamailio.server("TLS"), Transport.TLS))
    report = await check_phone(p, options(sip_pki))
    assert [(s.slot, s.result, s.transport) for s in report.servers] == [
        (1, CheckResult.REGISTERED, "UDP"), (2, CheckResult.REGISTERED, "TCP"), (3, CheckResult.REGISTERED, "TLS")]
    assert report.ok


async def test_wrong_password_is_authentication_rejected(kamailio):
    report = await check_phone(phone((kamailio.server("UDP"), Transport.UDP), password="not-the-password"), options())
    s = report.server(1)
    assert s.result is CheckResult.AUTH_REJECTED and s.sip_status == 401
    assert s.unregistered is None and not report.ok and not report.registered_anywhere


async def test_digest_user_may_differ_from_the_phone_user(kamailio):
    p = phone((kamailio.server("UDP"), Transport.UDP), user="1001", auth="carol-auth", password="carolpw")
    report = await check_phone(p, options())
    assert report.server(1).result is CheckResult.REGISTERED


async def test_tls_with_an_untrusted_ca_is_a_tls_error(kamailio):
    report = await check_phone(phone((kamailio.server("TLS"), Transport.TLS)), options(None))  # system CAs only
    s = report.server(1)
    assert s.result is CheckResult.TLS_ERROR and "certificate" in s.detail
    assert s.sip_status is None and s.address == kamailio.server("TLS")


async def test_tls_host_name_mismatch_is_a_tls_error(kamailio_factory, sip_pki):
    # 127.0.0.2 presents a certificate made out to sip.test and 127.0.0.1 only
    wrong = kamailio_factory(address="127.0.0.2", cert=sip_pki.cert(SIP_DOMAIN, "127.0.0.1"))
    report = await check_phone(phone((wrong.server("TLS"), Transport.TLS)), options(sip_pki))
    s = report.server(1)
    assert s.result is CheckResult.TLS_ERROR and "mismatch" in s.detail.lower()


async def test_tls_certificate_from_another_ca_is_rejected_even_with_a_ca_bundle(kamailio_factory, sip_pki):
    foreign = kamailio_factory(address="127.0.0.2", cert=sip_pki.cert(SIP_DOMAIN, "127.0.0.2", untrusted=True))
    report = await check_phone(phone((foreign.server("TLS"), Transport.TLS)), options(sip_pki))
    assert report.server(1).result is CheckResult.TLS_ERROR


async def test_tcp_to_a_closed_port_is_connection_refused(kamailio):
    closed = f"127.0.0.5:{free_port('127.0.0.5')}"
    started = time.monotonic()
    report = await check_phone(phone((closed, Transport.TCP), (kamailio.server("UDP"), Transport.UDP)), options())
    assert report.server(1).result is CheckResult.CONNECTION_REFUSED
    assert report.server(2).result is CheckResult.REGISTERED
    assert time.monotonic() - started < 1.5  # refused at once, no budget spent waiting


async def test_udp_to_a_closed_port_is_connection_refused_by_icmp(kamailio):
    closed = f"127.0.0.5:{free_port('127.0.0.5')}"
    report = await check_phone(phone((closed, Transport.UDP)), options(server_budget=5.0))
    s = report.server(1)
    assert s.result is CheckResult.CONNECTION_REFUSED and "ICMP" in s.detail
    assert report.duration_ms < 1000


async def test_report_is_json_serialisable(kamailio):
    report = await check_phone(phone((kamailio.server("UDP"), Transport.UDP), phone_id="ph-1"), options())
    data = json.loads(report.to_json())
    assert data["phone_id"] == "ph-1" and data["ok"] is True
    assert data["servers"][0]["result"] == "registered"
    assert data["servers"][0]["address"] == kamailio.server("UDP")
    assert "password" not in report.to_json() and "alicepw" not in report.to_json()


async def test_many_phones_share_one_stack(kamailio):
    phones = [phone((kamailio.server("UDP"), Transport.UDP), user=f"u{i:04d}", password=f"pw{i:04d}") for i in range(40)]
    phones.append(phone((kamailio.server("UDP"), Transport.UDP), user="u0041", password="wrong"))
    stack = SipStack.create(idle_close=30.0)
    try:
        async with CheckService(options(concurrency=10), stack=stack) as service:
            reports = await service.check_all(phones)
        assert stack.transports.stats.flows_opened == 1  # one UDP socket for the registrar
    finally:
        await stack.close()
    assert [r.phone_id for r in reports] == [p.id for p in phones]
    assert all(r.ok for r in reports[:-1]) and not reports[-1].ok
    assert kamailio.contacts("u0007") == []
