"""Status rows: how reports fold into a phone's health, and write-on-change to a real store."""

import asyncio

import pytest

from sipphones.cli.runtime import open_store
from sipphones.monitor.status import PhoneHealth, StatusWriter, apply_report, describe_failure, target_text
from sipphones.sip.config import Target, TargetTransport
from sipphones.sip.events import Expired, Registered, RegistrationFailed, ResultKind, Stopped
from tests.monitor.store import PhoneStore, Server

T1 = Target("127.0.0.1", 5060, TargetTransport.UDP)
T2 = Target("::1", 5061, TargetTransport.TLS, server_name="sip.test")


def test_target_text_brackets_ipv6():
    assert target_text(T1) == "127.0.0.1:5060"
    assert target_text(T2) == "[::1]:5061"
    assert target_text(None) == ""


def test_registered_then_refresh_changes_nothing_worth_writing():
    h = PhoneHealth("p1", "acc")
    apply_report(h, Registered(1, T1, 60, 0.004), now=1000.0)
    h.state = "registered"
    h.sync_binding(True, 1, 60)
    assert (h.registered, h.server_slot, h.server_address, h.transport, h.granted_expires) == \
        (True, 1, "127.0.0.1:5060", "UDP", 60)
    assert h.last_success_at == 1000.0 and h.last_status_code == 200
    assert h.needs_write(1000.0, heartbeat=0)
    h.written_key, h.written_at = h.key(), 1000.0
    # a refresh 30 s later: same server, same grant -> no write (timestamps alone do not count)
    apply_report(h, Registered(1, T1, 60, 0.003), now=1030.0)
    h.state = "registered"
    h.sync_binding(True, 1, 60)
    assert h.last_success_at == 1030.0
    assert not h.needs_write(1030.0, heartbeat=0)
    # ...unless the heartbeat is due
    assert not h.needs_write(1030.0, heartbeat=300)
    assert h.needs_write(1300.0, heartbeat=300)


def test_failover_keeps_the_reason_visible_and_failback_clears_it():
    h = PhoneHealth("p1", "acc", first_slot=1)
    failure = RegistrationFailed(1, T1, ResultKind.TIMEOUT, None, "no final response within the server budget")
    apply_report(h, failure, now=10.0)
    assert h.last_error == "set 1 127.0.0.1:5060/UDP: timeout: no final response within the server budget"
    apply_report(h, Registered(2, T2, 120, 0.01), now=11.0)
    h.sync_binding(True, 2, 120)
    assert h.server_slot == 2 and h.transport == "TLS" and h.server_address == "[::1]:5061"
    assert "set 1" in h.last_error  # still registered, but not on the first set: say why
    # a failed fail-back probe changes nothing
    before = h.key()
    apply_report(h, RegistrationFailed(1, T1, ResultKind.TIMEOUT, None, "x", probe=True), now=130.0)
    assert h.key() == before
    apply_report(h, Registered(1, T1, 60, 0.002), now=250.0)
    h.state = "registered"
    h.sync_binding(True, 1, 60)
    assert h.last_error == "" and h.server_slot == 1


def test_rejection_and_expiry_and_stop():
    h = PhoneHealth("p1", "acc")
    apply_report(h, RegistrationFailed(1, T1, ResultKind.AUTH_REJECTED, 403, "Forbidden"), now=5.0)
    h.state = "failed"
    h.sync_binding(False, None, None)
    assert not h.registered and h.state == "failed" and h.last_status_code == 403
    assert describe_failure(RegistrationFailed(1, None, ResultKind.DNS_ERROR, None, "")) == "set 1: dns_error"
    assert "(SIP 403)" in h.last_error
    apply_report(h, Expired(1), now=6.0)
    assert "expired" in h.last_error
    h.sync_binding(True, 1, 60)
    apply_report(h, Stopped(), now=7.0)
    assert not h.registered and h.server_slot is None and h.granted_expires is None


@pytest.fixture
def store(tmp_path):
    s = PhoneStore(tmp_path)
    acc = s.account()
    s.phones = [s.phone(acc, f"u{i}", "pw", [Server("127.0.0.1:5060")]) for i in range(3)]
    return s


async def test_writer_writes_changes_once_coalesced_and_skips_deleted(store):
    writes: list[tuple[bool, int]] = []
    async with open_store(store.settings) as repo:
        writer = StatusWriter(repo, on_write=lambda ok, n: writes.append((ok, n)))
        writer.start()
        p0, p1, p2 = store.phones
        h0 = PhoneHealth(p0.id, p0.account_id)
        h1 = PhoneHealth(p1.id, p1.account_id)
        # three changes of p0 before the writer runs: one row write
        h0.state = "registering"
        assert writer.offer(h0)
        apply_report(h0, Registered(1, T1, 60, 0.001), now=100.0)
        h0.state = "registered"
        h0.sync_binding(True, 1, 60)
        assert writer.offer(h0)
        assert not writer.offer(h0)  # nothing changed since the last offer
        assert writer.offer(h1, force=True)
        assert writer.pending == 2
        assert await writer.flush(5)
        assert writes == [(True, 2)]  # one batch
        row = await repo.get_status(p0.id)
        assert row.registered and row.state == "registered" and row.server_address == "127.0.0.1:5060"
        assert row.granted_expires == 60 and row.last_success_at == 100.0 and row.last_status_code == 200
        # a phone deleted while its row waits: forget drops it; a write that races the delete
        # inserts nothing (the store checks the phone exists)
        h2 = PhoneHealth(p2.id, p2.account_id)
        await repo.delete_phone(p2.account_id, p2.id)
        writer.offer(h2, force=True)
        assert await writer.flush(5)
        assert await repo.get_status(p2.id) is None
        await writer.close()


async def test_writer_survives_a_store_failure_and_retries(store):
    import sqlite3

    db_path = store.database_url.removeprefix("sqlite:///")
    writes: list[tuple[bool, int]] = []
    async with open_store(store.settings) as repo:
        writer = StatusWriter(repo, on_write=lambda ok, n: writes.append((ok, n)), retry_delay=0.05)
        writer.start()
        p0 = store.phones[0]
        h = PhoneHealth(p0.id, p0.account_id, state="registering")
        with sqlite3.connect(db_path) as con:  # the table disappears under the monitor's feet
            con.execute("ALTER TABLE phone_status RENAME TO phone_status_away")
        writer.offer(h)
        for _ in range(100):
            if writer.errors:
                break
            await asyncio.sleep(0.02)
        assert writer.errors >= 1 and writes[0] == (False, 1)
        assert writer.pending == 1  # kept for the retry
        # a newer state arrives while the store is down: it replaces the waiting row
        apply_report(h, Registered(1, T1, 60, 0.001), now=50.0)
        h.state = "registered"
        h.sync_binding(True, 1, 60)
        writer.offer(h)
        with sqlite3.connect(db_path) as con:
            con.execute("ALTER TABLE phone_status_away RENAME TO phone_status")
        assert await writer.flush(5)
        row = await repo.get_status(p0.id)
        assert row.state == "registered" and row.registered and row.last_success_at == 50.0
        assert writes[-1] == (True, 1)
        await writer.close()
