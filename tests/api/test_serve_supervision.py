"""``serve``'s processes watch each other (issue 10): workers end with their supervisor, a dead WAL
checkpoint process is restarted, a worker that dies is reported."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sipphones.storage import checkpoints
from tests.servers import child_processes, free_port, gone, serve_workers, start_server, start_sqlite_server, wait_for

CHECKPOINTER = checkpoints.PROCESS_NAME.decode()


def _checkpointers(pid: int) -> list[int]:
    return [p for p, name in child_processes(pid).items() if name == CHECKPOINTER]


def _kill_all(pids) -> None:
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_workers_and_the_checkpoint_process_end_when_the_supervisor_is_killed(tmp_path):
    srv = start_sqlite_server(tmp_path, workers=2)
    workers = wait_for("two workers", lambda: len(w := serve_workers(srv.proc.pid)) == 2 and w)
    [ckpt] = _checkpointers(srv.proc.pid)
    try:
        srv.proc.kill()
        srv.proc.wait(10)
        wait_for("the workers and the checkpoint process to end",
                  lambda: all(gone(p) for p in [*workers, ckpt]), timeout=15)
        log = srv.log()   # before the next serve on this port writes its own log there
        # The port is free again: a new serve starts on it and serves.
        again = start_server(srv.database_url, srv.data_dir, port=srv.port, workers=2)
        try:
            assert httpx.get(f"{again.base_url}/healthz").status_code == 200
        finally:
            again.stop()
    finally:
        _kill_all([*workers, ckpt])
    for pid in workers:
        assert f"worker process [{pid}]: its supervisor [{srv.proc.pid}] is gone; stopping" in log, log


def _write_pages(db: Path, rows: int) -> None:
    """Rows of ~one page each, committed by a connection that never checkpoints by itself."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE IF NOT EXISTS scratch (v BLOB)")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO scratch (v) VALUES (?)", [(b"x" * 3000,)] * rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_checkpoint_process_is_reaped_reported_and_restarted(tmp_path, workers):
    srv = start_sqlite_server(tmp_path, workers=workers)
    db = srv.data_dir / "sipphones.db"
    try:
        [first] = _checkpointers(srv.proc.pid)
        os.kill(first, signal.SIGKILL)
        [second] = wait_for("a new checkpoint process",
                             lambda: [p for p in _checkpointers(srv.proc.pid) if p != first])
        assert not Path(f"/proc/{first}").exists()   # reaped: no zombie left
        assert f"the WAL checkpoint process [{first}] killed by SIGKILL; restarted as [{second}]\n" in srv.log()
        # The new one checkpoints: the WAL's pages reach the database file.
        before = os.path.getsize(db)
        _write_pages(db, 300)
        wait_for("a checkpoint", lambda: os.path.getsize(db) > before + 300 * 3000)

        # One that dies again at once is replaced after a back-off.
        os.kill(second, signal.SIGKILL)
        [third] = wait_for("a third checkpoint process",
                            lambda: [p for p in _checkpointers(srv.proc.pid) if p not in (first, second)])
        assert (f"the WAL checkpoint process [{second}] killed by SIGKILL; restarted as [{third}] "
                f"(first checkpoint in {checkpoints.RESTART_DELAYS_S[1]:g} s)") in srv.log()
        assert httpx.get(f"{srv.base_url}/healthz").status_code == 200
    finally:
        srv.stop()
    wait_for("the checkpoint process to end", lambda: gone(third), timeout=10)
    assert "Traceback" not in srv.log(), srv.log()


def test_a_checkpoint_process_stopped_on_purpose_is_reaped_and_not_restarted(tmp_path):
    srv = start_sqlite_server(tmp_path, workers=2)
    try:
        [ckpt] = _checkpointers(srv.proc.pid)
        os.kill(ckpt, signal.SIGTERM)   # as an operator's kill: it runs its last checkpoint, exits 0
        wait_for("the checkpoint process to be reaped", lambda: not Path(f"/proc/{ckpt}").exists())
        time.sleep(0.5)
        assert _checkpointers(srv.proc.pid) == []
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log()
    assert "checkpoint" not in srv.log().lower(), srv.log()


def test_a_killed_worker_is_reported_as_a_warning(tmp_path):
    srv = start_sqlite_server(tmp_path, workers=2)
    try:
        workers = wait_for("two workers", lambda: len(w := serve_workers(srv.proc.pid)) == 2 and w)
        os.kill(workers[0], signal.SIGKILL)
        # uvicorn notices it at its next health check; one in flight to the dead worker waits out
        # its timeout (serve: 30 s) first.
        wait_for("a replacement worker",
                  lambda: len(w := serve_workers(srv.proc.pid)) == 2 and workers[0] not in w and w, timeout=60)
        assert f"worker process [{workers[0]}] killed by SIGKILL; the supervisor starts a new one\n" in srv.log()
        # Workers that uvicorn itself replaces (SIGHUP) or stops are not reported.
        srv.proc.send_signal(signal.SIGHUP)
        wait_for("replaced workers", lambda: len(w := serve_workers(srv.proc.pid)) == 2 and workers[1] not in w)
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log()
    assert srv.log().count("worker process [") == 1, srv.log()


def test_a_hung_worker_is_replaced(tmp_path):
    # A worker whose loop does not answer the supervisor's pings for SIPPHONES_WORKER_HEALTHCHECK_S
    # (here: stopped with SIGSTOP) is killed and replaced, with a warning.
    srv = start_sqlite_server(tmp_path, workers=2, extra_env={"SIPPHONES_WORKER_HEALTHCHECK_S": "2"})
    try:
        workers = wait_for("two workers", lambda: len(w := serve_workers(srv.proc.pid)) == 2 and w)
        os.kill(workers[0], signal.SIGSTOP)
        fresh = wait_for("a replacement worker",
                          lambda: len(w := serve_workers(srv.proc.pid)) == 2 and workers[0] not in w and w, timeout=30)
        assert gone(workers[0])
        assert f"worker process [{workers[0]}] has not answered for 2 s; replacing it" in srv.log()
        for _ in range(10):   # new connections spread over both workers: every one is answered
            assert httpx.get(f"{srv.base_url}/healthz", timeout=10).status_code == 200
        assert workers[1] in fresh
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log()


def test_a_worker_that_cannot_start_stops_serve(tmp_path):
    # A worker failing at start (here: a Redis URL its rate limiter cannot use) would fail the same
    # way in every replacement: the supervisor stops, with uvicorn's startup-failure status.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}
    p = subprocess.run([sys.executable, "-m", "sipphones", "serve", "--port", str(free_port()), "--workers", "2",
                        "--data-dir", str(tmp_path), "--redis-url", "foo://x"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 3, p.stderr
    assert "could not start; stopping" in p.stderr, p.stderr
