"""CSV import at scale: ``sipphones phones import --create-users`` of a generated file into a
fresh account of a ``sipphones serve`` this module starts (SQLite or PostgreSQL).

Each size gets its own fresh account (no users, no phones) and its own file of that many rows,
one user per row (the worst case for ``--create-users``: a user create before every phone). The
import runs as the command an admin types, in its own process; while it runs the process tree's
resident memory is sampled (``/proc``, every 20 ms) and its peak kept. Printed per size: rows a
second over the whole command (listing, validation, user creates, phone creates), the phones
phase alone, and the importer's peak RSS; the check that the account then holds exactly the
file's phones, each once.

    .venv/bin/python -m bench.csv_import                  # 10,000 and 100,000 rows, SQLite and PostgreSQL
    .venv/bin/python -m bench.csv_import --rows 2000 --no-postgres
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import coldstart, seed  # noqa: E402
from bench.procs import Server, free_port, launch, rss_mib  # noqa: E402

SIZES = (10_000, 100_000)
QUICK_SIZES = (300, 1_500)
SAMPLE_EVERY = 0.02           # seconds between two RSS samples of the importer
IMPORT_TIMEOUT = 3_600.0      # one import, at most
EMAIL_DOMAIN = "import.bench"


def row(n: int) -> list[str]:
    """Row ``n`` of the generated file (the CSV columns below, one user per row)."""
    return [f"u{n}@{EMAIL_DOMAIN}", str(100_000 + n), f"auth{n}", f"pw-{n:08d}-secret", "sip.example.com",
            "10.0.0.1:5060", "10.0.0.1:5060", "UDP", "10.0.0.2", "", "TCP", "60", "", f"+1555{n:07d}"]


HEADER = ["user_email", "user_name", "authorization_name", "password", "domain", "register_server", "proxy_server",
          "transport_protocol", "register_server2", "proxy_server2", "transport_protocol2", "registration_expire_time",
          "voice_mail", "display_number"]


def write_csv(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for n in range(rows):
            w.writerow(row(n))
    return path


@dataclass
class ImportRun:
    rows: int
    seconds: float
    peak_rss_mib: float
    summary: dict
    exit_code: int
    phones_seconds: float = 0.0       # from the first phone create to the end (the importer's own timing)
    stderr_tail: str = ""
    samples: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "seconds": self.seconds, "rows_per_s": self.rows_per_s,
                "peak_rss_mib": self.peak_rss_mib, "exit_code": self.exit_code, "summary": self.summary,
                "rss_samples": self.samples}


@dataclass
class PeakRss:
    """Samples the resident memory of a process tree in a thread until stopped."""

    pid: int
    peak: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            mib = rss_mib(self.pid)
            if mib:
                self.samples += 1
                self.peak = max(self.peak, mib)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def import_argv(path: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "sipphones", "phones", "import", str(path), "--create-users", "--json", *extra]


def run_import(server: Server, creds: seed.Credentials, path: Path, rows: int,
               extra: tuple[str, ...] = ()) -> ImportRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "SIPPHONES_"))}
    env.update({"ZOOM_ACCOUNT_ID": creds.account_id, "ZOOM_CLIENT_ID": creds.client_id,
                "ZOOM_CLIENT_SECRET": creds.client_secret, "ZOOM_API_BASE_URL": f"{server.base_url}/v2"})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(import_argv(path, extra), env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        rss = PeakRss(proc.pid)
        try:
            code = proc.wait(IMPORT_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            peak = rss.stop()
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        text = out.read().decode("utf-8", "replace")
        tail = err.read()[-2000:].decode("utf-8", "replace")
    try:
        summary = json.loads(text) if text.strip() else {}
    except ValueError:
        summary = {"unreadable": text[-500:]}
    return ImportRun(rows, seconds, peak, summary, code, stderr_tail=tail, samples=rss.samples)


def check(run: ImportRun, server: Server, creds: seed.Credentials, rows: int) -> list[str]:
    """What is wrong with a finished import (empty: nothing)."""
    from sipphones.client import SipPhonesClient

    problems = []
    s = run.summary
    if run.exit_code != 0:
        problems.append(f"exit code {run.exit_code}: {run.stderr_tail.strip()[-300:]}")
    if (s.get("created"), s.get("failed"), s.get("users_created")) != (rows, 0, rows):
        problems.append(f"summary {({k: s.get(k) for k in ('created', 'failed', 'users_created', 'errors_total')})}")
    with SipPhonesClient(creds.account_id, creds.client_id, creds.client_secret, base_url=f"{server.base_url}/v2",
                         timeout=120) as zoom:
        listed = [p["user_email"] for p in zoom.iter_phones()]
    if len(listed) != rows or set(listed) != {f"u{n}@{EMAIL_DOMAIN}" for n in range(rows)}:
        problems.append(f"the account holds {len(listed)} phones ({len(set(listed))} distinct), not the file's {rows}")
    return problems


def start_serve(name: str, url: str, data_dir: Path, workers: int) -> Server:
    port = free_port()
    srv = launch(name, coldstart.serve_argv(port, workers), log_dir=data_dir, port=port,
                 env=coldstart.serve_env(data_dir, url))
    srv.wait_ready("/healthz", timeout=60)
    return srv


def measure_store(name: str, url: str, data_dir: Path, sizes: tuple[int, ...], *, workers: int = 2,
                  extra: tuple[str, ...] = (), log=print) -> dict:
    """Each size into a fresh account of one ``serve`` on ``url``; results and problems."""
    data_dir.mkdir(parents=True, exist_ok=True)
    seed.prepare_schema(url)
    accounts = [seed.provision_account(url, data_dir, f"import-{n}") for n in sizes]
    files = [write_csv(data_dir / f"import-{n}.csv", n) for n in sizes]
    srv = start_serve(f"import-{name}", url, data_dir, workers)
    out: dict = {"store": name, "serve_workers": workers, "args": list(extra), "runs": [], "problems": []}
    try:
        for n, creds, path in zip(sizes, accounts, files):
            run = run_import(srv, creds, path, n, extra)
            problems = check(run, srv, creds, n)
            out["runs"].append(run.as_dict())
            out["problems"] += [f"{name} {n:,} rows: {p}" for p in problems]
            log(f"  {name}: {n:,} rows in {run.seconds:.1f} s = {run.rows_per_s:,.0f} rows/s, "
                f"importer peak RSS {run.peak_rss_mib:.1f} MiB{'' if not problems else ' PROBLEMS: ' + '; '.join(problems)}")
    finally:
        srv.stop()
    runs = out["runs"]
    if len(runs) >= 2 and runs[0]["peak_rss_mib"]:
        out["rss_growth"] = runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"] - 1
    return out


def run_phase(workdir: Path, sizes: tuple[int, ...], make_pg_url=None, *, workers: int = 2,
              extra: tuple[str, ...] = (), log=print) -> dict:
    """The bench's "import" phase: SQLite, then PostgreSQL when ``make_pg_url`` gives a fresh
    database's URL. Returns ``{"sqlite": ..., "postgres": ..., "problems": [...]}``."""
    out: dict = {"sizes": list(sizes), "problems": []}
    stores = [("sqlite", lambda: f"sqlite:///{workdir / 'import-sqlite' / 'sipphones.db'}")]
    if make_pg_url is not None:
        stores.append(("postgres", make_pg_url))
    for name, url in stores:
        log(f"CSV import on {name}: {', '.join(f'{n:,}' for n in sizes)} rows, --create-users, serve --workers {workers}")
        got = measure_store(name, url(), workdir / f"import-{name}", sizes, workers=workers, extra=extra, log=log)
        out[name] = got
        out["problems"] += got["problems"]
    return out


def report_lines(phase: dict) -> list[str]:
    lines = ["CSV import (phones import --create-users, one user a row, fresh account each):"]
    for name in ("sqlite", "postgres"):
        if name not in phase:
            continue
        for r in phase[name]["runs"]:
            lines.append(f"  {name:8} {r['rows']:>8,} rows  {r['rows_per_s']:>7,.0f} rows/s  ({r['seconds']:.1f} s)  "
                         f"importer peak RSS {r['peak_rss_mib']:.1f} MiB")
        if "rss_growth" in phase[name]:
            lines.append(f"  {name:8} peak RSS at the largest size vs the smallest: {phase[name]['rss_growth']:+.1%}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, action="append", help="a size (repeat; default 10,000 and 100,000)")
    p.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--postgres-url", default=os.environ.get("SIPPHONES_BENCH_POSTGRES_URL",
                                                            "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    p.add_argument("--serve-workers", type=int, default=2)
    p.add_argument("--import-arg", action="append", default=[], help="an extra argument of `phones import`")
    p.add_argument("--output", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    sizes = tuple(args.rows or (QUICK_SIZES if args.quick else SIZES))
    from bench.run import Cleanup, create_pg_database

    cleanup = Cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="sipphones-import-"))
    cleanup.add("workdir", lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        phase = run_phase(workdir, sizes, None if args.no_postgres else
                          (lambda: create_pg_database(args.postgres_url, cleanup)),
                          workers=args.serve_workers, extra=tuple(args.import_arg),
                          log=lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        cleanup.run()
    print("\n".join(report_lines(phase)))
    if args.output:
        args.output.write_text(json.dumps(phase, indent=2) + "\n")
    if phase["problems"]:
        print("PROBLEMS:\n  " + "\n  ".join(phase["problems"]))
    return 1 if phase["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
