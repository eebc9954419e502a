"""Monitor capacity through the real ``sipphones monitor`` command (used by bench/sip_engine.py).

A SQLite store is seeded with N phones (bench/seed.py's bulk writers: the project's schema, id
format and password cipher), their server set is pointed at the benchmark's kamailio
(``127.0.0.1:PORT`` over UDP, domain ``sip.test``, ``registration_expire_time`` 1 minute), and
kamailio gets one digest user per phone, with the credentials read back from the store through
the repository (so nothing here assumes how the seeder names or encrypts them).

Then ``python -m sipphones monitor`` runs as a subprocess with ``--metrics-port``; the harness
waits until ``sipphones_registrations{state="registered"}`` counts every phone, samples the
process's CPU and RSS from /proc while it holds them, reads its counters (attempts, failures,
expirations, status writes), and stops it with SIGTERM (it un-registers everything). Every wait
is bounded; the process is stopped by PID in any case.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SeededStore:
    root: Path
    database_url: str
    data_dir: Path
    credentials: list[tuple[str, str]]   # (authorization_name, password) per phone

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(SIPPHONES_DATABASE_URL=self.database_url, SIPPHONES_DATA_DIR=str(self.data_dir))
        env.pop("SIPPHONES_SECRET_KEY", None)
        return env


def seed_store(root: Path, count: int, *, domain: str) -> SeededStore:
    """A store with ``count`` phones (server set not yet pointed anywhere: see :func:`point_at`)."""
    from bench import seed
    from sipphones.storage.crypto import PasswordCipher
    from sipphones.storage.store import SqlRepository

    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / "data"
    data_dir.mkdir(exist_ok=True)
    db = root / "sipphones.db"
    url = f"sqlite:///{db}"
    seed.prepare_schema(url)
    account = seed.provision_account(url, data_dir, "SIP bench").account_id
    users = seed.seed_users(url, account, "sipbench", (count + len(seed.VARIANTS) - 1) // len(seed.VARIANTS))
    seed.seed_phones(url, data_dir, account, "sipbench", users, count)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE sip_phones SET domain = ?, registration_expire_time = 1", (domain,))

    async def read() -> list[tuple[str, str]]:
        repo = SqlRepository.from_url(url, PasswordCipher(seed.keys_for(data_dir).sip_password))
        try:
            return [(p.authorization_name, p.password) async for p in repo.iter_phones(account)]
        finally:
            await repo.close()

    creds = asyncio.run(read())
    if len(creds) != count:
        raise RuntimeError(f"seeded {count} phones but read back {len(creds)}")
    return SeededStore(root, url, data_dir, creds)


def point_at(store: SeededStore, server: str) -> None:
    """Every phone's first server set: ``server`` (host:port) over UDP, no proxy, no other sets."""
    db = store.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE sip_phones SET register_server = ?, proxy_server = '', transport_protocol = 'UDP', "
                    "register_server2 = '', proxy_server2 = '', transport_protocol2 = '', "
                    "register_server3 = '', proxy_server3 = '', transport_protocol3 = ''", (server,))


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)')


def scrape(port: int) -> dict[str, float]:
    """Prometheus text of the monitor as ``{'name{labels}': value}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def total(metrics: dict[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def run_monitor(store: SeededStore, *, count: int, hold: float, start_rate: float, sample_every: float,
                sampler, free_port, log_dir: Path) -> dict:
    """Start ``sipphones monitor``, wait for every phone to register, hold, sample, stop."""
    port = free_port("127.0.0.1")
    out_path, err_path = log_dir / "monitor.out", log_dir / "monitor.log"
    argv = [sys.executable, "-m", "sipphones", "monitor", "--metrics-port", str(port),
            "--start-rate", str(start_rate), "--reload-interval", "30", "--log-level", "warning",
            "--stop-timeout", "30"]
    result: dict = {"engine": "sipphones monitor", "count": count, "argv": argv[1:]}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, env=store.env, cwd=REPO, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        t0 = time.monotonic()
        registered = 0.0
        for _ in range(int(300 / 0.5)):   # bounded: five minutes to register everything
            if proc.poll() is not None:
                raise RuntimeError(f"sipphones monitor exited with {proc.returncode}:\n"
                                   f"{err_path.read_text(errors='replace')[-3000:]}")
            try:
                registered = scrape(port).get('sipphones_registrations{state="registered"}', 0.0)
            except OSError:
                registered = 0.0
            if registered >= count:
                break
            time.sleep(0.5)
        first = {"registered": int(registered), "seconds": round(time.monotonic() - t0, 2),
                 "complete": registered >= count}
        result["first"] = first
        print(f"  monitor  {int(registered)}/{count} registered in {first['seconds']} s; sampling for {hold:.0f} s",
              flush=True)
        before = scrape(port)
        samples, shares = sampler(proc.pid, hold, sample_every)
        after = scrape(port)
        result.update(shares)
        result["samples"] = samples
        attempts = total(after, "sipphones_registration_attempts_total") - total(before, "sipphones_registration_attempts_total")
        result["refreshes"] = int(attempts)
        result["refresh_rate"] = round(attempts / hold, 1)
        result["failed_during_hold"] = int(total(after, "sipphones_registration_failures_total")
                                           - total(before, "sipphones_registration_failures_total"))
        result["expired_during_hold"] = int(total(after, "sipphones_expirations_total")
                                            - total(before, "sipphones_expirations_total"))
        result["status_writes_during_hold"] = int(total(after, "sipphones_status_writes_total")
                                                  - total(before, "sipphones_status_writes_total"))
        result["registered_at_end"] = int(after.get('sipphones_registrations{state="registered"}', 0.0))
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            result["exit_code"] = proc.wait(60)
        except subprocess.TimeoutExpired:
            result["exit_code"] = None
        result["stop_seconds"] = round(time.monotonic() - t1, 2)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
    return result
