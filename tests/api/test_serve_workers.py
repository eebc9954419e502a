"""``sipphones serve --workers 2``: worker processes that stay single-threaded (see
sipphones.cli.serving) and still answer the supervisor's health checks."""

from __future__ import annotations

import os
import signal

import httpx

from tests.api.zoom import token_client
from tests.servers import Admin, serve_workers, start_sqlite_server, wait_for


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_workers_serve_without_a_second_thread_and_answer_health_checks(tmp_path):
    srv = start_sqlite_server(tmp_path, workers=2)
    try:
        creds = Admin(srv.database_url, srv.data_dir).account(users=("alice@example.com",))
        procs = wait_for("two workers", lambda: len(w := serve_workers(srv.proc.pid)) == 2 and w)
        # An OAuth token (secret check), a create and lists on both workers (new connections
        # spread over them).
        with token_client(srv, creds) as api:
            r = api.post("/v2/sip_phones", json={
                "user_email": "alice@example.com", "user_name": "1001", "authorization_name": "1001",
                "password": "s3cret", "domain": "sip.example.com", "register_server": "192.0.2.10",
                "proxy_server": "192.0.2.10", "voice_mail": "4000"})
            assert r.status_code == 201, r.text
            token = api.headers["Authorization"]
        for _ in range(10):
            with httpx.Client(base_url=srv.base_url, headers={"Authorization": token}) as c:
                r = c.get("/v2/sip_phones/phones")
                assert r.status_code == 200 and len(r.json()["phones"]) == 1
        assert [_threads(p) for p in procs] == [1, 1]

        # SIGHUP: the supervisor brings up each replacement and waits until it reports itself started
        # (a health check answered with "started") before retiring the old worker.
        srv.proc.send_signal(signal.SIGHUP)
        fresh = wait_for("two replaced workers",
                          lambda: len(w := serve_workers(srv.proc.pid)) == 2 and not set(w) & set(procs) and w)
        assert httpx.get(f"{srv.base_url}/healthz").status_code == 200
        assert [_threads(p) for p in fresh] == [1, 1]
        assert "was not ready in time" not in srv.log()
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log()
