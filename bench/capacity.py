"""Capacity on paper: what PostgreSQL holds per 100,000 phones, and the CPU one API request costs
(the service's process plus the PostgreSQL backend serving it), measured on this machine.

    .venv/bin/python bench/capacity.py [--phones 100000] [--requests 2000] [--postgres-url URL]

1. A fresh database ``sipphones_capacity_*`` is migrated and seeded with ``--phones`` users,
   ``--phones`` phones (bench/seed.py: the project's own tables, ids and cipher) and one
   monitor status row per phone; after VACUUM ANALYZE each table's size with its indexes and TOAST
   (``pg_total_relation_size``) is printed, per phone and per 1,000,000 phones.
2. ``sipphones serve`` (one worker) on that database: ``--requests`` creates (``POST
   /v2/sip_phones``, each a new phone) and as many list pages (``GET /v2/sip_phones/phones``,
   30 phones) from 8 client threads; the CPU seconds of the server's process tree and of the
   database's backends (``pg_stat_activity``, read from procfs) over the run, divided by the
   requests: CPU microseconds per request, and requests per core-second (1e6 / that). CPU per
   request does not depend on how busy the rest of the machine is as much as req/s does (but a
   busy machine still inflates it somewhat: caches, scheduling); the load average is printed.
The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import cpu_seconds_between, free_port, pids_cpu_ticks, tree_cpu_ticks  # noqa: E402
from bench.seed import (  # noqa: E402
    keys_for, prepare_schema, provision_account, seed_phones, seed_users, user_email,
)
from tests.pg import fresh_postgres_database  # noqa: E402

TABLES = ("accounts", "users", "apps", "sip_phones", "phone_status")


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def seed_status(url: str, account_id: str) -> None:
    """One phone_status row per phone, as a monitor keeping every phone registered writes it."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO phone_status (phone_id, account_id, registered, state, server_slot, server_address, "
            "transport, last_error, last_status_code, last_success_at, last_attempt_at, granted_expires, updated_at) "
            "SELECT id, account_id, true, 'registered', 1, '192.0.2.10:5060', 'UDP', '', 200, "
            "extract(epoch from now()), extract(epoch from now()), 60, extract(epoch from now()) "
            "FROM sip_phones WHERE account_id = %s", (account_id,))


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        out = {t: conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0] for t in TABLES}
        out["database"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return out


def backend_pids(url: str) -> list[int]:
    db = make_url(url).database
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (db,)).fetchall()
    return [r[0] for r in rows]


def drive(base: str, token: str, requests: list[tuple[str, str, dict | None]], threads: int = 8) -> dict[int, int]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    chunks = [requests[n::threads] for n in range(threads)]

    def run(chunk):
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
            for method, path, body in chunk:
                r = c.request(method, path, json=body)
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    ts = [threading.Thread(target=run, args=(ch,)) for ch in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


def measure(name: str, url: str, server: subprocess.Popen, base: str, token: str, requests) -> float:
    drive(base, token, requests[:200])  # warm: connections open, statements prepared, lists memoised
    pg_before, srv_before = pids_cpu_ticks(backend_pids(url)), tree_cpu_ticks(server.pid)
    start = time.monotonic()
    statuses = drive(base, token, requests[200:])
    wall = time.monotonic() - start
    pg = cpu_seconds_between(pg_before, pids_cpu_ticks(backend_pids(url)))
    srv = cpu_seconds_between(srv_before, tree_cpu_ticks(server.pid))
    n = len(requests) - 200
    per = (pg + srv) / n * 1e6
    print(f"{name:<7} {n:>6} requests {statuses}  {n / wall:7.0f} req/s wall  server {srv / n * 1e6:6.0f} µs "
          f"+ PostgreSQL {pg / n * 1e6:5.0f} µs CPU per request = {per:6.0f} µs -> {1e6 / per:6.0f} req per core-second")
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--postgres-url", default=os.environ.get("SIPPHONES_BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    url, drop = fresh_postgres_database(args.postgres_url, "sipphones_capacity")
    data_dir = Path(tempfile.mkdtemp(prefix="sipphones-capacity-"))
    server = None
    try:
        prepare_schema(url)
        keys_for(data_dir)
        creds = provision_account(url, data_dir, "capacity")
        t = time.monotonic()
        users = seed_users(url, creds.account_id, "u", args.phones)
        seed_phones(url, data_dir, creds.account_id, "u", users, args.phones)
        seed_status(url, creds.account_id)
        print(f"seeded {args.phones:,} users, phones and status rows in {time.monotonic() - t:.0f} s")
        s = sizes(url)
        per_phone = (s["users"] + s["sip_phones"] + s["phone_status"]) / args.phones
        print(f"{'table':<14}{'bytes':>14}{'per phone':>11}{'per 1M phones':>15}")
        for name in TABLES + ("database",):
            print(f"{name:<14}{s[name]:>14,}{s[name] / args.phones:>11.0f}{s[name] / args.phones * 1e6 / 2**30:>12.2f} GiB")
        print(f"users + phones + status: {per_phone:.0f} bytes per phone; {per_phone * 1e6 / 2**30:.2f} GiB per 1,000,000")

        port = free_port()
        env = dict(os.environ, SIPPHONES_DATABASE_URL=url, SIPPHONES_DATA_DIR=str(data_dir))
        env.pop("SIPPHONES_REDIS_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "sipphones", "serve", "--port", str(port), "--workers", "1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        token = httpx.post(base + "/oauth/token", auth=(creds.client_id, creds.client_secret),
                           data={"grant_type": "account_credentials", "account_id": creds.account_id}).json()["access_token"]
        n = args.requests + 200
        # users from phones/10 on have no phone yet (seed_phones gives each seeded user ten)
        first_free = args.phones // 10 + 1
        creates = [("POST", "/v2/sip_phones", {
            "user_email": user_email("u", first_free + k), "user_name": str(k), "authorization_name": f"a{k}",
            "password": f"pw-{k}-secret", "domain": "sip.example.com", "register_server": "192.0.2.10",
            "proxy_server": "192.0.2.10", "voice_mail": "4000"}) for k in range(n)]
        lists = [("GET", "/v2/sip_phones/phones?page_size=30", None)] * n
        print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores; above ~1 other jobs share the CPU)")
        measure("create", url, server, base, token, creates)
        measure("list", url, server, base, token, lists)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        drop()
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
