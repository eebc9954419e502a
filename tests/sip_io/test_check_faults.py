"""``check`` against SIPp peers that misbehave the ways kamailio does not: silence, 503, 423,
stale nonces, proxy authentication, garbage and oversized replies; and against a fake
registrar that verifies the digest."""

from __future__ import annotations

import time

import pytest

from sipphones.check.models import CheckResult
from sipphones.check.service import CheckOptions, check_phone
from sipphones.phones.models import Transport

from .helpers import digest_params, expected_digest_response, header, phone

pytestmark = pytest.mark.peers

ALICE = {"user": "alice", "password": "alicepw"}


def options(**kw) -> CheckOptions:
    kw.setdefault("server_budget", 0.6)
    kw.setdefault("t1", 0.1)
    return CheckOptions(**kw)


async def test_blackhole_times_out_within_the_budget_then_the_next_set_registers(sipp_factory, kamailio):
    dead = sipp_factory("blackhole", address="127.0.0.2")
    started = time.monotonic()
    report = await check_phone(phone((dead.server(), Transport.UDP), (kamailio.server("UDP"), Transport.UDP)),
                               options(all_slots=False))
    first, second = report.server(1), report.server(2)
    assert first.result is CheckResult.TIMEOUT and first.sip_status is None
    assert second.result is CheckResult.REGISTERED
    assert time.monotonic() - started < 3.0                  # the budget, not Timer F's 32 s
    assert len(dead.received_requests()) >= 3                # Timer E retransmitted over UDP


async def test_blackhole_over_tcp_is_not_retransmitted(sipp_factory):
    dead = sipp_factory("blackhole", address="127.0.0.2", transport="TCP")
    report = await check_phone(phone((dead.server(), Transport.TCP)), options())
    assert report.server(1).result is CheckResult.TIMEOUT
    assert len(dead.received_requests()) == 1


async def test_503_with_retry_after_is_a_server_error_and_fails_over(sipp_factory, kamailio):
    busy = sipp_factory("busy_503", address="127.0.0.2")
    report = await check_phone(phone((busy.server(), Transport.UDP), (kamailio.server("UDP"), Transport.UDP)),
                               options(all_slots=False))
    first = report.server(1)
    assert first.result is CheckResult.SERVER_ERROR and first.sip_status == 503
    assert report.server(2).result is CheckResult.REGISTERED
    assert len(busy.received_requests()) == 1                # a 503 is final: no retry there


async def test_423_raises_expires_to_min_expires(sipp_factory):
    peer = sipp_factory("interval_423", address="127.0.0.2")
    report = await check_phone(phone((peer.server(), Transport.UDP), expire_minutes=1), options())
    s = report.server(1)
    assert s.result is CheckResult.REGISTERED and s.granted_expires == 600
    registers = peer.received_requests()
    assert [header(m, "Expires") for m in registers[:2]] == [["60"], ["600"]]
    assert header(registers[-1], "Expires") == ["0"] and s.unregistered is True


async def test_stale_nonce_is_retried_with_the_new_nonce(sipp_factory):
    peer = sipp_factory("stale_nonce", address="127.0.0.2", variables=ALICE)
    report = await check_phone(phone((peer.server(), Transport.UDP)), options())
    assert report.server(1).result is CheckResult.REGISTERED
    registers = peer.received_requests()
    nonces = [digest_params(header(m, "Authorization")[0])["nonce"] if header(m, "Authorization") else None
              for m in registers[:3]]
    assert nonces[0] is None and nonces[1].startswith("first") and nonces[2].startswith("second")
    cseqs = [int(header(m, "CSeq")[0].split()[0]) for m in registers]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs)          # rising CSeq
    assert len({header(m, "Call-ID")[0] for m in registers}) == 1            # one Call-ID


async def test_407_is_answered_with_proxy_authorization(sipp_factory):
    peer = sipp_factory("proxy_auth_407", address="127.0.0.2")
    report = await check_phone(phone((peer.server(), Transport.UDP)), options())
    assert report.server(1).result is CheckResult.REGISTERED
    answered = [m for m in peer.received_requests() if header(m, "Proxy-Authorization")]
    assert answered, "no REGISTER carried Proxy-Authorization"
    p = digest_params(header(answered[0], "Proxy-Authorization")[0])
    assert p["realm"] == "proxy.test"              # from the challenge, not the SIP domain
    assert p["uri"] == "sip:sip.test"              # the Request-URI
    assert p["opaque"].startswith("opq") and p["username"] == "alice"
    assert p["response"] == expected_digest_response(p, username="alice", password="alicepw")
    assert not header(answered[0], "Authorization")


async def test_fake_registrar_verifies_the_digest(sipp_factory):
    peer = sipp_factory("registrar", address="127.0.0.2", variables=ALICE)
    report = await check_phone(phone((peer.server(), Transport.UDP)), options())
    s = report.server(1)
    assert s.result is CheckResult.REGISTERED and s.granted_expires == 120
    assert s.unregistered is True


async def test_fake_registrar_rejects_a_wrong_password(sipp_factory):
    peer = sipp_factory("registrar", address="127.0.0.2", variables=ALICE)
    report = await check_phone(phone((peer.server(), Transport.UDP), password="wrong"), options())
    assert report.server(1).result is CheckResult.AUTH_REJECTED
    assert len(peer.received_requests()) == 2      # one authenticated retry, no hammering


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_garbage_reply_is_a_protocol_error(sipp_factory, kamailio, transport):
    peer = sipp_factory("garbage", address="127.0.0.2", transport=transport)
    report = await check_phone(phone((peer.server(), Transport(transport)), (kamailio.server("UDP"), Transport.UDP)),
                               options())
    s = report.server(1)
    assert s.result is CheckResult.PROTOCOL_ERROR and "malformed" in s.detail.lower(), s
    assert report.server(2).result is CheckResult.REGISTERED   # and the engine went on


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_oversized_reply_is_a_protocol_error(sipp_factory, transport):
    peer = sipp_factory("oversized", address="127.0.0.2", transport=transport)
    report = await check_phone(phone((peer.server(), Transport(transport))), options())
    s = report.server(1)
    assert s.result is CheckResult.PROTOCOL_ERROR and "too long" in s.detail.lower(), s
