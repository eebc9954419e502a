"""Cold start of ``sipphones serve``: launch to the first 200 from ``/healthz``, and clean
multi-worker starts on a fresh SQLite file.

Every launch gets a fresh data directory, so the SQLite file does not exist yet: the figure
includes creating the file and running the migrations, the case that trips multi-worker starts
(two workers both switching a new file to WAL race to "database is locked", reference §2.5 #10).
The page cache is warm (the package was imported before), as in the reference figures.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import free_port, http_get, launch, process_tree

BAD_LOG = re.compile(r"Traceback|ERROR|database is locked|Exception", re.IGNORECASE)


def serve_argv(port: int, workers: int, log_level: str = "warning") -> list[str]:
    return [sys.executable, "-m", "sipphones", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--log-level", log_level]


def serve_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    return {"SIPPHONES_DATA_DIR": str(data_dir),
            "SIPPHONES_DATABASE_URL": database_url or f"sqlite:///{data_dir / 'sipphones.db'}"}


def time_one_start(workdir: Path, workers: int, n: int) -> float:
    data_dir = workdir / f"cold-w{workers}-{n}"
    port = free_port()
    srv = launch(f"cold-w{workers}", serve_argv(port, workers), log_dir=data_dir, env=serve_env(data_dir), port=port)
    try:
        return srv.wait_ready("/healthz", timeout=30, poll=0.005)
    finally:
        srv.stop()


@dataclass
class CleanStartCheck:
    workers: int
    launches: int
    failures: list[str] = field(default_factory=list)
    ready_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and len(self.ready_s) == self.launches


def check_clean_starts(workdir: Path, workers: int, launches: int) -> CleanStartCheck:
    """Start ``workers`` workers on a fresh SQLite file ``launches`` times; each must come up whole:
    every worker logs "Application startup complete", every worker process stays alive, the log has
    no error, every /healthz answers 200, and SIGTERM ends the tree."""
    result = CleanStartCheck(workers, launches)
    for n in range(launches):
        data_dir = workdir / f"clean-w{workers}-{n}"
        port = free_port()
        srv = launch(f"clean-w{workers}", serve_argv(port, workers, "info"), log_dir=data_dir,
                     env=serve_env(data_dir), port=port)
        problem = ""
        try:
            result.ready_s.append(srv.wait_ready("/healthz", timeout=30, poll=0.005))
            # Every worker must finish its startup; give the slower ones a moment, bounded.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and srv.log().count("Application startup complete") < workers:
                time.sleep(0.02)
            statuses = [http_get(port, "/healthz")[0] for _ in range(4 * workers)]
            tree = process_tree(srv.pid)
            log = srv.log()
            started = log.count("Application startup complete")
            if started != workers:
                problem = f"{started} of {workers} workers completed startup"
            elif any(s != 200 for s in statuses):
                problem = f"/healthz statuses {sorted(set(statuses))}"
            elif len(tree) < workers + 1:
                problem = f"only {len(tree) - 1} child processes alive for {workers} workers"
            elif m := BAD_LOG.search(log):
                problem = f"log mentions {m.group(0)!r}"
        except Exception as e:  # noqa: BLE001 - any failure to start is the finding
            problem = f"did not start: {str(e).splitlines()[0]}"
        finally:
            srv.stop()
        if problem:
            tail = "\n    ".join(srv.log().splitlines()[-15:])
            result.failures.append(f"launch {n + 1}: {problem}\n    {tail}")
    return result


def cold_starts(workdir: Path, worker_counts: tuple[int, ...], launches: int) -> dict[int, list[float]]:
    """Interleaved launches (1 worker, 2 workers, 1 worker, ...): seconds to the first 200."""
    out: dict[int, list[float]] = {w: [] for w in worker_counts}
    for n in range(launches):
        for w in worker_counts:
            out[w].append(time_one_start(workdir, w, n))
    return out


def summarize(values: list[float]) -> dict:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values), "runs": values}
