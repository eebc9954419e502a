"""Faults a monitor survives: the database lost and back (a PostgreSQL cluster the test started
itself), the registrar restarted, and on SQLite a second monitor of one file refused."""

from __future__ import annotations

import signal
import subprocess
import time

from tests.fleet.fleetstore import add_phones, keepers, postgres_store, stored_contacts
from tests.monitor.running import start_monitor, wait_for
from tests.monitor.store import CLI, Server

USERS = [f"u{n:04d}" for n in range(8)]


def _all_bound_once(kam, users):
    counts = kam.binding_counts(users)
    return all(n == 1 for n in counts.values()) and counts


def test_a_monitor_losing_the_database_keeps_refreshing_and_resumes_writing_status(tmp_path, private_pg,
                                                                                   kamailio_factory, monitors):
    # bindings of 10 s: a phone not refreshed during the 25 s outage would drop out of kamailio
    kam = kamailio_factory(address="127.0.0.1", min_expires=10)
    store = postgres_store(tmp_path, private_pg.url)
    phones = add_phones(store, USERS, Server(kam.server("UDP"), "UDP"))
    m = start_monitor(store, "--expires", "10", "--status-heartbeat", "2", "--lease", "3", "--timeout", "2")
    monitors.append(m)
    wait_for("every phone registered and recorded", lambda: len(store.statuses()) == len(phones)
             and all(s.registered for s in store.statuses().values()), timeout=20)
    assert all(alive for _, alive in keepers(store).values())

    private_pg.stop()
    down_at = time.time()
    seen_expires: dict[str, set[str]] = {u: set() for u in USERS}
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:  # two and a half binding lifetimes without the database
        assert m.proc.poll() is None, m.log()
        assert _all_bound_once(kam, USERS), kam.all_contacts()
        for u in USERS:
            for b in kam.bindings(u):
                seen_expires[u].add(b.get("Expires", ""))
        time.sleep(1.0)
    # refreshed, not merely not yet expired: each binding's expiry moved on during the outage
    assert all(len(v) >= 3 for v in seen_expires.values()), seen_expires
    assert "fleet heartbeat failed (registrations go on" in m.log()

    private_pg.start()
    up_at = time.time()
    # status writes resume: every row rewritten after the database came back, still registered
    wait_for("status rows written after the restart", lambda: (rows := store.statuses())
             and all(r.updated_at > up_at and r.registered for r in rows.values()), timeout=30)
    assert all(alive for _, alive in keepers(store).values())  # the lease renewed, the claims kept
    assert up_at - down_at >= 25
    code, _ = m.terminate(signal.SIGTERM, timeout=30)
    assert code == 0, m.log()


def test_every_phone_registers_again_after_the_registrar_restarts(tmp_path, store, kamailio_factory, monitors):
    kam = kamailio_factory(address="127.0.0.1", min_expires=10)
    for n, u in enumerate(USERS):
        store.phone(store.account_id, u, "pw" + u[1:], [Server(kam.server("UDP"), "UDP")])
    m = start_monitor(store, "--expires", "10", "--timeout", "1", "--retry-interval", "2", "--retry-max", "4")
    monitors.append(m)
    wait_for("every phone bound", lambda: _all_bound_once(kam, USERS), timeout=20)

    ports = dict(udp_port=kam.udp_port, tcp_port=kam.tcp_port, tls_port=kam.tls_port)
    kam.stop()  # the location table is in memory: every binding is gone
    time.sleep(3)
    restarted = kamailio_factory(address="127.0.0.1", min_expires=10, **ports)  # an empty location table
    back_at = time.monotonic()
    # within the retry policy: a refresh due within 10 s, or a retry after 2-4 s if it failed meanwhile
    wait_for("every phone bound again", lambda: _all_bound_once(restarted, USERS), timeout=20)
    assert time.monotonic() - back_at < 20
    wait_for("every status row registered", lambda: all(s.registered for s in store.statuses().values()))


def test_a_second_monitor_of_one_sqlite_file_is_refused(tmp_path, store, kamailio, monitors):
    store.phone(store.account_id, "u0190", "pw0190", [Server(kamailio.server("UDP"), "UDP")])
    first = start_monitor(store)
    monitors.append(first)
    second = subprocess.run([*CLI, "monitor"], env=store.env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert second.stderr.startswith("error: another sipphones monitor already keeps the phones of "), second.stderr
    assert "only one monitor may run per database file" in second.stderr and "Traceback" not in second.stderr
    # the status view names the one monitor that keeps the phone
    (name, alive), = keepers(store).values()
    assert name.endswith(f":{first.proc.pid}") and alive
    # the phone bound, and its Contact recorded (at the monitor's next heartbeat, lease/3): what
    # a monitor killed before that moment leaves behind expires at the registrar by itself
    wait_for("the first monitor's binding", lambda: len(kamailio.contacts("u0190")) == 1, timeout=15)
    wait_for("its Contact recorded", lambda: stored_contacts(store), timeout=15)
    # the lock dies with its process, SIGKILL included: a new monitor starts and takes the phone over
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    again = start_monitor(store)
    monitors.append(again)
    wait_for("the new monitor keeping the phone",
             lambda: next(iter(keepers(store).values()))[0].endswith(f":{again.proc.pid}"), timeout=15)
    # the killed monitor's binding (60 s) is removed by the new keeper's first REGISTER
    wait_for("one binding", lambda: len(kamailio.contacts("u0190")) == 1, timeout=10)
