"""``sipphones check`` as an operator runs it: a subprocess on a real store, against real kamailio.

Phones point at the shared kamailio (127.0.0.1, UDP/TCP/TLS), at a port where nothing listens
(connection refused), and at a SIPp that swallows every REGISTER (timeout). The JSON document is
parsed and the exit codes checked; the bindings the check made must be gone afterwards.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.monitor.store import CLI, PhoneStore, Server
from tests.peers.fixtures import DnsZone, Srv, free_port


@pytest.fixture
def store(tmp_path) -> PhoneStore:
    s = PhoneStore(tmp_path)
    s.account_id = s.account("Check account")
    return s


def check(store: PhoneStore, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "check", *args], env=store.env, capture_output=True, text=True, timeout=timeout)


def check_json(store: PhoneStore, *args: str) -> tuple[int, dict]:
    result = check(store, "--json", *args)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_udp_tcp_tls_phones_register_then_unregister(store, kamailio, sip_pki):
    acc = store.account_id
    alice = store.phone(acc, "alice", "alicepw", [Server(kamailio.server("UDP"), "UDP")])
    bob = store.phone(acc, "bob", "bobpw", [Server(kamailio.server("TCP"), "TCP")])
    # user_name differs from the digest user (Cisco-style): authorization_name carries it
    carol = store.phone(acc, "carol", "carolpw", [Server(kamailio.server("TLS"), "TLS")],
                        authorization_name="carol-auth")
    code, doc = check_json(store, alice.id, bob.id, carol.id, "--ca-file", str(sip_pki.ca_file))
    assert code == 0, doc
    assert doc["ok"] is True and doc["checked"] == 3 and doc["failed"] == 0
    assert [p["phone_id"] for p in doc["phones"]] == [alice.id, bob.id, carol.id]
    for report, transport in zip(doc["phones"], ("UDP", "TCP", "TLS")):
        assert report["ok"] and report["error"] is None
        (s,) = report["servers"]
        assert s["slot"] == 1 and s["result"] == "registered" and s["ok"] is True
        assert s["address"] == kamailio.server(transport)
        assert s["transport"] == transport and s["configured_transport"] == transport
        assert s["sip_status"] == 200
        assert s["granted_expires"] == 60  # registration_expire_time 1 minute, as kamailio granted it
        assert s["rtt_ms"] > 0
        assert s["unregistered"] is True
    # the check un-registered: kamailio holds no binding of these users
    for user in ("alice", "bob", "carol"):
        assert kamailio.contacts(user) == []
    # the password never reaches the output
    assert "alicepw" not in json.dumps(doc)


def test_tls_without_the_ca_is_a_tls_error(store, kamailio):
    phone = store.phone(store.account_id, "alice", "alicepw", [Server(kamailio.server("TLS"), "TLS")])
    code, doc = check_json(store, phone.id)
    assert code == 3
    (s,) = doc["phones"][0]["servers"]
    assert s["result"] == "tls_error" and s["transport"] == "TLS"
    assert s["sip_status"] is None and s["granted_expires"] is None


def test_wrong_password_is_auth_rejected(store, kamailio):
    phone = store.phone(store.account_id, "bob", "not-bobs-password", [Server(kamailio.server("UDP"))])
    code, doc = check_json(store, phone.id)
    assert code == 3
    assert doc["ok"] is False and doc["failed"] == 1
    (s,) = doc["phones"][0]["servers"]
    assert s["result"] == "auth_rejected"
    assert s["sip_status"] == 401  # kamailio challenges a wrong digest again
    assert kamailio.contacts("bob") == []


def test_each_server_set_reported_dead_ones_named(store, kamailio, sipp_factory):
    dead_tcp = f"127.0.0.1:{free_port('127.0.0.1')}"
    blackhole = sipp_factory("blackhole", address="127.0.0.2")
    phone = store.phone(store.account_id, "alice", "alicepw", [
        Server(kamailio.server("UDP"), "UDP"),
        Server(dead_tcp, "TCP"),
        Server(blackhole.server(), "UDP"),
    ])
    code, doc = check_json(store, phone.id, "--timeout", "0.6")
    assert code == 3
    report = doc["phones"][0]
    assert report["ok"] is False and report["registered_anywhere"] is True
    s1, s2, s3 = report["servers"]
    assert (s1["slot"], s1["result"], s1["address"], s1["transport"]) == (1, "registered", kamailio.server("UDP"), "UDP")
    assert (s2["slot"], s2["result"], s2["address"], s2["transport"]) == (2, "connection_refused", dead_tcp, "TCP")
    assert (s3["slot"], s3["result"], s3["address"]) == (3, "timeout", blackhole.server())
    assert len(blackhole.received_requests()) >= 1  # it really was asked


def test_server_names_resolved_with_the_given_nameserver(store, kamailio, dns_factory):
    zone = DnsZone(hosts={"registrar.sip.test": ["127.0.0.1"]},
                   srv=[Srv("_sip._tcp.sip.test", "registrar.sip.test", kamailio.tcp_port)])
    dns = dns_factory(zone)
    phone = store.phone(store.account_id, "alice", "alicepw", [
        Server("sip.test", "TCP"),            # SRV _sip._tcp.sip.test -> registrar.sip.test:port -> 127.0.0.1
        Server("nowhere.sip.test", "UDP"),    # NXDOMAIN
    ])
    code, doc = check_json(store, phone.id, "--nameserver", f"{dns.address}:{dns.port}")
    assert code == 3
    s1, s2 = doc["phones"][0]["servers"]
    assert (s1["server"], s1["result"], s1["address"], s1["transport"]) == \
        ("sip.test", "registered", kamailio.server("TCP"), "TCP")
    assert (s2["server"], s2["result"], s2["dns_error"]) == ("nowhere.sip.test", "dns_error", "nxdomain")
    assert s2["address"] is None


def test_human_output_is_a_table_with_a_summary(store, kamailio):
    ok = store.phone(store.account_id, "alice", "alicepw", [Server(kamailio.server("UDP"))])
    bad = store.phone(store.account_id, "bob", "wrong", [Server(kamailio.server("TCP"), "TCP")])
    result = check(store, ok.id, bad.id)
    assert result.returncode == 3, result.stderr
    out = result.stdout
    assert "registered" in out and "auth_rejected" in out
    assert kamailio.server("UDP") in out and "200" in out
    assert "2 phone(s) checked: 1 ok, 1 failed" in out
    assert ok.id in out and bad.id in out  # ids are never cut short: they are what to act on
    # narrow terminals and pipes get one block per phone, one line per server set, never wrapped
    narrow = subprocess.run([*CLI, "check", ok.id, bad.id], env={**store.env, "COLUMNS": "80"},
                            capture_output=True, text=True, timeout=60)
    assert narrow.returncode == 3
    lines = narrow.stdout.splitlines()
    assert lines[0] == f"{ok.id}  alice@sip.test  ({ok.user_email})"
    assert lines[1].startswith(f"  set 1  {kamailio.server('UDP')}  -> {kamailio.server('UDP')}/UDP  registered  SIP 200  ")
    assert lines[1].endswith("expires 60 s")
    assert lines[2] == f"{bad.id}  bob@sip.test  ({bad.user_email})"
    assert lines[3].startswith(f"  set 1  {kamailio.server('TCP')}  -> {kamailio.server('TCP')}/TCP  auth_rejected  SIP 401")
    assert lines[4] == "2 phone(s) checked: 1 ok, 1 failed"


def test_failed_only_shows_the_failed_phones_and_every_report_names_its_user(store, kamailio):
    ok = store.phone(store.account_id, "alice", "alicepw", [Server(kamailio.server("UDP"))])
    bad = store.phone(store.account_id, "bob", "wrong", [Server(kamailio.server("TCP"), "TCP")])
    # --json: user_email in every report; with --failed-only only the failed ones, the counts whole
    code, doc = check_json(store, ok.id, bad.id)
    assert code == 3
    assert [(p["phone_id"], p["user_email"]) for p in doc["phones"]] == [(ok.id, ok.user_email),
                                                                         (bad.id, bad.user_email)]
    code, doc = check_json(store, ok.id, bad.id, "--failed-only")
    assert code == 3  # the exit code is the check's, not the output's
    assert (doc["checked"], doc["failed"], doc["ok"]) == (2, 1, False)
    assert doc["options"]["failed_only"] is True
    assert [(p["phone_id"], p["user_email"], p["servers"][0]["result"]) for p in doc["phones"]] == \
        [(bad.id, bad.user_email, "auth_rejected")]
    # text, wide (a table) and narrow (blocks): only the failed phone, with its user; the summary whole
    for columns in ("200", "80"):
        result = subprocess.run([*CLI, "check", ok.id, bad.id, "--failed-only"],
                                env={**store.env, "COLUMNS": columns}, capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert bad.id in result.stdout and bad.user_email in result.stdout and "auth_rejected" in result.stdout
        assert ok.id not in result.stdout and ok.user_email not in result.stdout
        assert "2 phone(s) checked: 1 ok, 1 failed" in result.stdout
    wide = check(store, ok.id, bad.id)
    assert ok.user_email in wide.stdout and bad.user_email in wide.stdout
    # nothing failed: no table, the summary, exit 0
    result = check(store, ok.id, "--failed-only")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 phone(s) checked: 1 ok, 0 failed"
    code, doc = check_json(store, ok.id, "--failed-only")
    assert code == 0 and doc["phones"] == [] and doc["checked"] == 1


def test_all_and_account_check_many_phones_concurrently(store, kamailio):
    other = store.account("Other account")
    users = [u for u in kamailio.users if u.username.startswith("u01")][:12]
    mine = [store.phone(store.account_id, u.username, u.password, [Server(kamailio.server("UDP"))]) for u in users[:8]]
    theirs = [store.phone(other, u.username, u.password, [Server(kamailio.server("TCP"), "TCP")]) for u in users[8:]]
    code, doc = check_json(store, "--account", store.account_id, "--concurrency", "3")
    assert code == 0, doc
    assert sorted(p["phone_id"] for p in doc["phones"]) == sorted(p.id for p in mine)
    code, doc = check_json(store, "--all")
    assert code == 0
    assert doc["checked"] == len(mine) + len(theirs)
    assert all(p["servers"][0]["result"] == "registered" for p in doc["phones"])
    # a phone named with --account must belong to it
    result = check(store, theirs[0].id, "--account", store.account_id)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no SIP phone with id {theirs[0].id} in account {store.account_id}"


def test_unknown_phone_is_one_sentence_and_exit_1(store):
    result = check(store, "NoSuchPhone0000000000")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "error: no SIP phone with id NoSuchPhone0000000000"


def test_usage_errors_exit_2(store):
    assert check(store).returncode == 2
    assert check(store, "--all", "--account", store.account_id).returncode == 2
