"""``sipphones monitor`` as a subprocess against the shared kamailio and a real store.

What is checked is what kamailio holds (``kamcmd ul.dump`` / ``ul.lookup``), what the store's
``phone_status`` rows say, and what the metrics endpoint serves.
"""

from __future__ import annotations

import signal
import time


from tests.monitor.running import start_monitor, wait_for
from tests.monitor.store import Server


def aor(user: str) -> str:
    """How kamailio's ul.dump names an AoR (its usrloc runs without use_domain)."""
    return user


def test_registers_follows_changes_serves_metrics_and_unregisters_on_sigterm(store, kamailio, sip_pki, monitors):
    acc = store.account_id
    udp = store.phone(acc, "u0000", "pw0000", [Server(kamailio.server("UDP"), "UDP")])
    tcp = store.phone(acc, "u0001", "pw0001", [Server(kamailio.server("TCP"), "TCP")])
    tls = store.phone(acc, "u0002", "pw0002", [Server(kamailio.server("TLS"), "TLS")])
    m = start_monitor(store, "--ca-file", str(sip_pki.ca_file), "--stop-timeout", "3")
    monitors.append(m)
    assert "monitoring 3 phone(s)" in m.stdout()

    wait_for("three bindings in kamailio",
             lambda: {aor("u0000"), aor("u0001"), aor("u0002")} <= set(kamailio.registered_aors()))

    def registered_rows():
        rows = store.statuses()
        return rows if len(rows) == 3 and all(r.registered for r in rows.values()) else None
    rows = wait_for("three registered status rows", registered_rows)
    for phone, transport in ((udp, "UDP"), (tcp, "TCP"), (tls, "TLS")):
        row = rows[phone.id]
        assert row.state == "registered" and row.account_id == acc
        assert row.server_slot == 1 and row.server_address == kamailio.server(transport)
        assert row.transport == transport
        assert row.last_status_code == 200 and row.granted_expires == 60
        assert row.last_error == "" and row.last_success_at is not None

    # a phone created while running is registered; a deleted one is un-registered
    added = store.phone(acc, "u0003", "pw0003", [Server(kamailio.server("UDP"), "UDP")])
    wait_for("the added phone's binding", lambda: kamailio.contacts("u0003"))
    wait_for("the added phone's status row", lambda: (store.statuses().get(added.id) or None) and
             store.statuses()[added.id].registered)
    store.delete(udp)
    wait_for("the deleted phone's binding to go", lambda: kamailio.contacts("u0000") == [])
    assert kamailio.contacts("u0001") and kamailio.contacts("u0002")

    def metric_settled():
        return m.metric("sipphones_phones_managed") == 3 and \
            m.metric("sipphones_registrations", state="registered") == 3
    wait_for("the metrics to follow", metric_settled)
    s = m.metrics()
    assert s[("sipphones_registration_attempts_total", ())] >= 4
    assert s[("sipphones_registration_rtt_seconds_count", ())] >= 4
    assert s[("sipphones_reload_changes_total", (("change", "added"),))] == 4
    assert s[("sipphones_reload_changes_total", (("change", "removed"),))] == 1
    assert s[("sipphones_unregistrations_total", (("result", "ok"),))] == 1
    assert s[("sipphones_registration_failures_total", (("reason", "timeout"),))] == 0
    assert ("sipphones_failovers_total", (("reason", "timeout"),)) in s

    code, _ = m.terminate(signal.SIGTERM)  # bounded: terminate() waits at most 10 s
    assert code == 0, m.log()
    for user in ("u0001", "u0002", "u0003"):
        assert kamailio.contacts(user) == [], user
    rows = store.statuses()
    assert set(rows) == {tcp.id, tls.id, added.id}
    assert all(not r.registered and r.state == "stopped" for r in rows.values())
    assert "stopped; 3 binding(s) removed" in m.stdout()


def test_changed_phone_is_restarted_and_its_old_binding_removed(store, kamailio, monitors):
    acc = store.account_id
    phone = store.phone(acc, "u0010", "pw0010", [Server(kamailio.server("UDP"), "UDP")])
    m = start_monitor(store)
    monitors.append(m)
    first = wait_for("the first binding", lambda: kamailio.contacts("u0010"))
    wait_for("a registered row", lambda: store.statuses().get(phone.id) and store.statuses()[phone.id].registered)

    # a change that does not touch registration keeps the binding as it is
    phone = store.update(phone, voice_mail="5000")
    wait_for("the reload", lambda: (m.metric("sipphones_reload_changes_total", change="changed") or 0) >= 1)
    assert m.metric("sipphones_unregistrations_total", result="ok") == 0
    assert kamailio.contacts("u0010") == first

    # a wrong password: the old binding is removed (un-REGISTER) and the row says why
    phone = store.update(phone, password="wrong")

    def rejected():
        row = store.statuses().get(phone.id)
        return row if row is not None and row.state == "failed" else None
    row = wait_for("the rejection in the status row", rejected)
    assert not row.registered and row.last_status_code == 401
    assert "auth_rejected" in row.last_error and row.server_slot is None
    assert kamailio.contacts("u0010") == []
    assert m.metric("sipphones_unregistrations_total", result="ok") == 1
    assert m.metric("sipphones_registration_failures_total", reason="auth_rejected") >= 1

    # moved to TCP with the right password: registered again, over TCP
    phone = store.update(phone, password="pw0010", servers=[Server(kamailio.server("TCP"), "TCP")])

    def registered_tcp():
        row = store.statuses().get(phone.id)
        return row if row is not None and row.registered and row.transport == "TCP" else None
    row = wait_for("registered over TCP", registered_tcp)
    assert row.last_error == "" and row.server_address == kamailio.server("TCP")
    assert len(kamailio.contacts("u0010")) == 1 and "transport=tcp" in kamailio.contacts("u0010")[0]
    assert m.terminate()[0] == 0
    assert kamailio.contacts("u0010") == []


def test_filters_and_invalid_records(store, kamailio, monitors):
    other = store.account("Not monitored")
    mine = store.phone(store.account_id, "u0020", "pw0020", [Server(kamailio.server("UDP"))])
    also_mine = store.phone(store.account_id, "u0021", "pw0021", [Server(kamailio.server("UDP"))])
    theirs = store.phone(other, "u0022", "pw0022", [Server(kamailio.server("UDP"))])
    broken = store.phone(store.account_id, "u0023", "pw0023", [Server(kamailio.server("UDP"))], domain="not a domain")

    m = start_monitor(store, "--account", store.account_id)
    monitors.append(m)
    wait_for("both phones of the account", lambda: kamailio.contacts("u0020") and kamailio.contacts("u0021"))

    def invalid_row():
        row = store.statuses().get(broken.id)
        return row if row is not None and row.state == "invalid" else None
    row = wait_for("the invalid record's row", invalid_row)
    assert not row.registered and "cannot be registered" in row.last_error and "domain" in row.last_error
    wait_for("the invalid count", lambda: m.metric("sipphones_registrations", state="invalid") == 1)
    assert kamailio.contacts("u0022") == [] and theirs.id not in store.statuses()
    # fixing the record starts it
    store.update(broken, domain="sip.test")
    wait_for("the fixed phone's binding", lambda: kamailio.contacts("u0023"))
    assert m.terminate()[0] == 0

    m = start_monitor(store, "--phone", also_mine.id)
    monitors.append(m)
    assert "monitoring 1 phone(s)" in m.stdout()
    wait_for("the one phone", lambda: kamailio.contacts("u0021"))
    assert kamailio.contacts("u0020") == []
    assert m.terminate(signal.SIGINT)[0] == 0  # Ctrl-C stops as cleanly as SIGTERM
    assert kamailio.contacts("u0021") == []
    assert mine.id in store.statuses()


def test_operator_errors_are_one_sentence(store, kamailio):
    import socket
    import subprocess

    from tests.monitor.store import CLI

    def run(*args):
        return subprocess.run([*CLI, "monitor", *args], env=store.env, capture_output=True, text=True, timeout=30)

    r = run("--account", "NoSuchAccount")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "error: no account with id NoSuchAccount"
    r = run("--phone", "NoSuchPhone")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "error: no SIP phone with id NoSuchPhone"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run("--metrics-port", str(port))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"


def test_failover_when_the_first_server_dies_and_failback_when_it_returns(store, kamailio, kamailio_factory, monitors):
    first = kamailio_factory(address="127.0.0.2")
    phone = store.phone(store.account_id, "u0030", "pw0030", [
        Server(first.server("TCP"), "TCP"),
        Server(kamailio.server("TCP"), "TCP"),
    ])
    m = start_monitor(store, "--timeout", "1", "--probe-interval", "0.5", "--retry-interval", "1")
    monitors.append(m)

    def on_slot(slot: int):
        def check():
            row = store.statuses().get(phone.id)
            return row if row is not None and row.registered and row.server_slot == slot else None
        return check
    row = wait_for("registered on set 1", on_slot(1))
    assert row.server_address == first.server("TCP") and row.last_error == ""
    assert first.contacts("u0030") and kamailio.contacts("u0030") == []

    # the first registrar dies: the TCP connection drops, the machine re-registers at once, set 1
    # refuses, set 2 takes over; the row names the backup server and says why set 1 was left
    first.stop()
    row = wait_for("failed over to set 2", on_slot(2))
    assert row.server_address == kamailio.server("TCP") and row.transport == "TCP"
    assert row.last_error.startswith(f"set 1 {first.server('TCP')}/TCP: ")
    assert kamailio.contacts("u0030")
    assert sum(v for (name, _), v in m.metrics().items() if name == "sipphones_failovers_total") >= 1

    # it comes back on the same address and ports: the probe fails back to it and the backup
    # binding is removed
    again = kamailio_factory(address="127.0.0.2", udp_port=first.udp_port, tcp_port=first.tcp_port,
                             tls_port=first.tls_port)
    row = wait_for("failed back to set 1", on_slot(1))
    assert row.last_error == "" and row.server_address == again.server("TCP")
    wait_for("the backup binding to go", lambda: kamailio.contacts("u0030") == [])
    assert again.contacts("u0030")
    assert m.metric("sipphones_failbacks_total") >= 1
    assert m.terminate()[0] == 0
    assert again.contacts("u0030") == []


def _contact_field(kamailio, user: str, name: str) -> str | None:
    out = kamailio.kamcmd("ul.lookup", "location", f"{user}@{kamailio.domain}")
    for line in out.splitlines():
        if line.strip().startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return None


def test_refreshes_before_expiry_without_rewriting_the_status_row(store, kamailio_factory, monitors):
    registrar = kamailio_factory(address="127.0.0.3", min_expires=2)
    phone = store.phone(store.account_id, "u0040", "pw0040", [Server(registrar.server("UDP"))])
    m = start_monitor(store, "--expires", "3", "--status-heartbeat", "0")
    monitors.append(m)
    row = wait_for("registered", lambda: store.statuses().get(phone.id) and
                   store.statuses()[phone.id].registered and store.statuses()[phone.id])
    assert row.granted_expires == 3
    call_id = wait_for("the binding", lambda: _contact_field(registrar, "u0040", "Call-ID"))
    first_cseq = int(_contact_field(registrar, "u0040", "CSeq"))
    writes = m.metric("sipphones_status_writes_total", result="ok")
    attempts = m.metric("sipphones_registration_attempts_total")

    # a 3 s binding is refreshed every ~1.5 s on the same Call-ID with a rising CSeq, and never lapses
    for _ in range(40):
        assert registrar.contacts("u0040"), "the binding lapsed"
        if int(_contact_field(registrar, "u0040", "CSeq") or 0) >= first_cseq + 3:
            break
        time.sleep(0.2)
    assert int(_contact_field(registrar, "u0040", "CSeq")) >= first_cseq + 3
    assert _contact_field(registrar, "u0040", "Call-ID") == call_id
    assert m.metric("sipphones_registration_attempts_total") >= attempts + 2
    # refreshes change nothing an operator reads: no status write, the row is as it was
    assert m.metric("sipphones_status_writes_total", result="ok") == writes
    assert store.statuses()[phone.id] == row
    assert m.terminate()[0] == 0
    assert registrar.contacts("u0040") == []
