"""Server time of each admin console page with many phones in the account (issue 13's target:
each page in <= 50 ms with 10,000 phones).

The application is built in process (``create_app``, its lifespan run) and driven through
httpx's ASGI transport, so what is timed is the server's own work for a request (routing, the
session, the store, the template), without sockets or a client's parsing. The baseline, measured
in the same run the same way, is the API's own first page of the legacy list
(``GET /v2/sip_phones``, 30 phones): each page's ratio to it is printed.

    python -m bench.console [--phones 10000] [--rounds 30] [--quick]

``--quick`` (300 phones, 3 rounds) is what bench/tests runs. Prints a table, and with ``--json``
the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import seed

TARGET_MS = 50.0


async def _measure(client: httpx.AsyncClient, method: str, url: str, rounds: int, **kw) -> dict:
    times = []
    status = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = await client.request(method, url, **kw)
        times.append((time.perf_counter() - t0) * 1000)
        status = r.status_code
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
            "status": status}


async def run(phones: int, rounds: int, root: Path) -> dict:
    from sipphones.api.app import create_app
    from sipphones.config import load_settings
    from sipphones.repository import PhoneStatus
    from sipphones.storage.crypto import PasswordCipher
    from sipphones.storage.store import SqlRepository

    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{root / 'bench.db'}"
    t0 = time.perf_counter()

    def note(what: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {what}", file=sys.stderr, flush=True)

    await asyncio.to_thread(seed.prepare_schema, url)
    creds = await asyncio.to_thread(seed.provision_account, url, data_dir, "console bench")
    users = await asyncio.to_thread(seed.seed_users, url, creds.account_id, "c", max(1, (phones + 9) // 10))
    ids = await asyncio.to_thread(seed.seed_phones, url, data_dir, creds.account_id, "c", users, phones)
    note(f"seeded {phones} phones")
    # a status row for every phone, one in ten failed (what the monitor would have written)
    repo = SqlRepository.from_url(url, PasswordCipher(seed.keys_for(data_dir).sip_password))
    now = time.time()
    try:
        await repo.save_statuses([
            PhoneStatus(pid, creds.account_id, k % 10 != 0, "failed" if k % 10 == 0 else "registered", 1,
                        "192.0.2.10:5060", "UDP", "408 Request Timeout" if k % 10 == 0 else "", 408 if k % 10 == 0
                        else 200, None if k % 10 == 0 else now, now, None, now)
            for k, pid in enumerate(ids)])
    finally:
        await repo.close()

    note("statuses written")
    app = create_app(load_settings(database_url=url, data_dir=str(data_dir)), run_migrations=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            token = (await c.post("/oauth/token", params={"grant_type": "account_credentials",
                                                          "account_id": creds.account_id},
                                  auth=(creds.client_id, creds.client_secret))).json()["access_token"]
            results = {"baseline: GET /v2/sip_phones (API)": await _measure(
                c, "GET", "/v2/sip_phones", rounds, headers={"Authorization": f"Bearer {token}"})}
            results["API: GET /v2/sip_phones?search_key="] = await _measure(
                c, "GET", "/v2/sip_phones?search_key=c12@bench.example", rounds,
                headers={"Authorization": f"Bearer {token}"})
            results["GET /console/signin"] = await _measure(c, "GET", "/console/signin", rounds)
            page = await c.get("/console/signin")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            r = await c.post("/console/signin", data={"csrf": csrf, "account_id": creds.account_id,
                                                      "client_id": creds.client_id,
                                                      "client_secret": creds.client_secret})
            assert r.status_code == 303, r.text
            first = await c.get("/console/phones")
            next_token = re.search(r'page=([^"&]+)"', first.text)
            pages = {
                "GET /console/phones": "/console/phones",
                "GET /console/phones?q= (search)": "/console/phones?q=c12@bench.example",
                "GET /console/phones (page 2)": "/console/phones?q=&page=" + next_token.group(1).replace("&amp;", "&")
                if next_token else "/console/phones",
                "GET /console/phones?failed=1": "/console/phones?failed=1",
                "GET /console/phones/new": "/console/phones/new",
                "GET /console/phones/{id}/edit": f"/console/phones/{ids[len(ids) // 2]}/edit",
                "GET /console/phones/{id}/delete": f"/console/phones/{ids[len(ids) // 2]}/delete",
                "GET /console/csv": "/console/csv",
                "GET /console/users": "/console/users",
            }
            for name, path in pages.items():
                results[name] = await _measure(c, "GET", path, rounds)
                note(f"{name}: {results[name]['median_ms']:.1f} ms")
            # not a page: the whole export, for scale
            results["GET /console/csv/export (all phones)"] = await _measure(c, "GET", "/console/csv/export",
                                                                              max(1, rounds // 10))
    base = results["baseline: GET /v2/sip_phones (API)"]["median_ms"]
    for name, m in results.items():
        m["ratio_to_baseline"] = m["median_ms"] / base if base else None
    return {"phones": phones, "rounds": rounds, "target_ms": TARGET_MS, "pages": results}


def table(report: dict) -> str:
    lines = [f"console pages, {report['phones']:,} phones, {report['rounds']} rounds each "
             f"(target: each page <= {report['target_ms']:.0f} ms)",
             f"{'request':<42} {'median ms':>10} {'p95 ms':>8} {'x API list':>10} {'status':>6}"]
    for name, m in report["pages"].items():
        lines.append(f"{name:<42} {m['median_ms']:>10.2f} {m['p95_ms']:>8.2f} {m['ratio_to_baseline']:>10.2f} "
                     f"{m['status']:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    phones, rounds = (300, 3) if args.quick else (args.phones, args.rounds)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        report = asyncio.run(run(phones, rounds, Path(tmp)))
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
