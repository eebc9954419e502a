"""``sipphones monitor --workers N`` against the shared kamailio and a real SQLite store: the
fleet split over worker processes, metrics summed, a killed worker restarted, a clean stop,
no orphan when the supervisor itself is killed."""

from __future__ import annotations

import signal
import time


from sipphones.monitor.reload import shard_of
from tests.monitor.running import alive, children, kill, start_monitor, wait_for
from tests.monitor.store import Server

# Users of their own (kamailio's LOAD_USERS u0000-u0199): the killed worker's bindings stay in
# the shared registrar until they expire, and no other test may see them.
USERS = [f"u{n:04d}" for n in range(170, 178)]
ADDED = "u0178"
ORPHANED = [f"u{n:04d}" for n in range(180, 184)]


def _registered_rows(store, n):
    rows = store.statuses()
    return rows if len(rows) == n and all(r.registered for r in rows.values()) else None


def test_two_workers_split_the_fleet_sum_their_metrics_restart_and_stop_cleanly(store, kamailio, monitors):
    acc = store.account_id
    phones = [store.phone(acc, u, "pw" + u[1:], [Server(kamailio.server("UDP"), "UDP")]) for u in USERS]
    assert {shard_of(p.id, 2) for p in phones} == {0, 1}  # both workers have phones (8 random ids)
    m = start_monitor(store, "--workers", "2", "--stop-timeout", "3")
    monitors.append(m)
    assert f"monitoring {len(phones)} phone(s) in 2 worker processes" in m.stdout()
    workers = wait_for("two worker processes", lambda: (c := children(m.proc.pid)) and len(c) == 2 and c)

    wait_for("every binding in kamailio", lambda: set(USERS) <= set(kamailio.registered_aors()))
    wait_for("every status row registered", lambda: _registered_rows(store, len(phones)))
    wait_for("summed metrics", lambda: m.metric("sipphones_phones_managed") == len(phones)
             and m.metric("sipphones_registrations", state="registered") == len(phones))
    assert m.metric("sipphones_monitor_workers") == 2
    assert m.metric("sipphones_reload_changes_total", change="added") == len(phones)

    # a worker killed outright: the supervisor starts another, which registers that shard again
    victim = workers[0]
    before = {u: set(kamailio.contacts(u)) for u in USERS}
    kill(victim)
    wait_for("a new worker", lambda: (c := children(m.proc.pid)) and len(c) == 2 and victim not in c, timeout=20)
    wait_for("the metrics of both workers again", lambda: m.metric("sipphones_monitor_workers") == 2
             and m.metric("sipphones_registrations", state="registered") == len(phones), timeout=20)
    assert "exited with code -9" in m.log() and "restarting it" in m.log()

    # a phone created while running lands in exactly one worker
    added = store.phone(acc, ADDED, "pw" + ADDED[1:], [Server(kamailio.server("UDP"), "UDP")])
    wait_for("the added phone's binding", lambda: kamailio.contacts(ADDED))
    wait_for("the added phone counted once", lambda: m.metric("sipphones_phones_managed") == len(phones) + 1)
    assert store.statuses()[added.id].registered

    current = children(m.proc.pid)
    assert len(current) == 2
    code, _ = m.terminate(signal.SIGTERM, timeout=30)
    assert code == 0, m.log()
    assert not any(alive(p) for p in current)   # the supervisor waited for its workers
    # Every binding the running workers held is gone. The killed worker could not un-REGISTER:
    # its bindings (another Contact, another local port) stay until they expire at the registrar.
    assert kamailio.contacts(ADDED) == []
    stale = 0
    for user in USERS:
        left = set(kamailio.contacts(user))
        assert left <= before[user], user
        stale += len(left)
    assert 0 < stale < len(USERS)
    assert f"stopped; {len(phones) + 1} binding(s) removed" in m.stdout()
    assert all(not r.registered and r.state == "stopped" for r in store.statuses().values())


def test_workers_stop_on_their_own_when_the_supervisor_is_killed(store, kamailio, monitors):
    acc = store.account_id
    for u in ORPHANED:
        store.phone(acc, u, "pw" + u[1:], [Server(kamailio.server("UDP"), "UDP")])
    m = start_monitor(store, "--workers", "2", "--stop-timeout", "3")
    monitors.append(m)
    workers = wait_for("two worker processes", lambda: (c := children(m.proc.pid)) and len(c) == 2 and c)
    wait_for("the bindings", lambda: set(ORPHANED) <= set(kamailio.registered_aors()))
    m.proc.kill()
    m.proc.wait(10)
    wait_for("the orphaned workers to exit", lambda: not any(alive(p) for p in workers), timeout=20)
    for u in ORPHANED:
        assert kamailio.contacts(u) == [], u   # they un-registered before exiting


def test_a_worker_that_cannot_start_is_one_sentence(store, kamailio):
    import subprocess

    from tests.monitor.store import CLI
    r = subprocess.run([*CLI, "monitor", "--workers", "2", "--account", "nope"], env=store.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "error: no account with id nope"
    r = subprocess.run([*CLI, "monitor", "--workers", "0"], env=store.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--workers" in r.stderr
    started = time.monotonic()
    r = subprocess.run([*CLI, "monitor", "--shard", "2/2"], env=store.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--shard" in r.stderr and time.monotonic() - started < 30
