"""End to end: ``sipphones monitor`` keeps two phones against the shared kamailio (one with a
wrong password), a real ``sipphones serve`` on the same store serves their status, and
``sipphones phones status --failed`` shows exactly the bad one with its last error."""

from __future__ import annotations

import json
import os
import subprocess
import signal

from tests.monitor.running import start_monitor, wait_for
from tests.monitor.store import CLI, Server
from tests.servers import Admin, start_server


def test_phones_status_shows_what_the_monitor_recorded(store, kamailio, monitors):
    admin = Admin(store.database_url, store.data_dir)
    creds = admin.account(users=())
    good = store.phone(creds.account_id, "alice", "alicepw", [Server(kamailio.server("UDP"))])
    bad = store.phone(creds.account_id, "bob", "not-bobs", [Server(kamailio.server("TCP"), "TCP")])
    m = start_monitor(store, "--account", creds.account_id)
    monitors.append(m)

    def settled():
        rows = store.statuses()
        g, b = rows.get(good.id), rows.get(bad.id)
        return rows if g and g.registered and b and b.state == "failed" else None
    wait_for("alice registered and bob failed in the store", settled)

    server = start_server(store.database_url, store.data_dir)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "SIPPHONES_"))}
        env.update(ZOOM_ACCOUNT_ID=creds.account_id, ZOOM_CLIENT_ID=creds.client_id,
                   ZOOM_CLIENT_SECRET=creds.client_secret, ZOOM_API_BASE_URL=server.base_url + "/v2",
                   COLUMNS="200", NO_COLOR="1")

        def status(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*CLI, "phones", "status", *args], env=env, capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL)

        r = status("--failed", "--json")
        assert r.returncode == 0, r.stderr
        (row,) = json.loads(r.stdout)
        assert (row["phone_id"], row["user_email"], row["state"], row["registered"]) == \
            (bad.id, bad.user_email, "failed", False)
        assert row["last_status_code"] == 401
        assert row["last_error"] == (f"set 1 {kamailio.server('TCP')}/TCP: auth_rejected (SIP 401): "
                                     "credentials rejected"), row
        assert row["last_attempt_at"].endswith("Z") and row["last_success_at"] is None

        r = status("--failed")
        assert r.returncode == 0, r.stderr
        assert bad.id in r.stdout and "auth_rejected" in r.stdout and good.id not in r.stdout

        r = status("--json")
        assert r.returncode == 0, r.stderr
        rows = {p["phone_id"]: p for p in json.loads(r.stdout)}
        assert set(rows) == {good.id, bad.id}
        alice = rows[good.id]
        assert (alice["state"], alice["registered"], alice["server_slot"], alice["server_address"],
                alice["transport"], alice["last_error"], alice["granted_expires"]) == \
            ("registered", True, 1, kamailio.server("UDP"), "UDP", "", 60)
        assert alice["last_success_at"].endswith("Z")
    finally:
        server.stop()
    code, _ = m.terminate(signal.SIGTERM)
    assert code == 0, m.log()
