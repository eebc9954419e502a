"""WAL checkpoints outside the serving event loops (``storage.checkpoints``, ``serve``)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipphones.config import load_settings
from sipphones.storage import checkpoints
from sipphones.storage.raw.sqlite import SqliteRunner
from sipphones.storage.pragmas import SqlitePragmas
from tests.api.zoom import token_client
from tests.servers import Admin, child_processes, gone, start_sqlite_server

ROW = b"x" * 3000   # about one 4 KiB page per row


def _store(path: Path) -> sqlite3.Connection:
    """A WAL database whose writer never checkpoints by itself (as serve's workers, nearly)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
    return conn


def _write(conn: sqlite3.Connection, rows: int) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(ROW,)] * rows)
    conn.execute("COMMIT")


def _snapshot(path: Path) -> sqlite3.Connection:
    """A reader inside a read transaction: it holds its snapshot until its COMMIT."""
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    return reader


def _wal_frames(path: Path) -> int:
    """Frames in the WAL file as its size says (header 32 bytes, each frame 24 + page size)."""
    size = os.path.getsize(f"{path}-wal")
    return max(0, (size - 32) // (24 + 4096))


def test_a_checkpoint_copies_the_wal_into_the_database_file(tmp_path):
    db = tmp_path / "s.db"
    writer = _store(db)
    _write(writer, 300)
    before = os.path.getsize(db)
    result = checkpoints.checkpoint(checkpoints.connect(str(db)))
    assert not result.busy and result.wal_frames >= 300
    assert result.checkpointed == result.wal_frames and not result.restarted
    assert os.path.getsize(db) > before + 300 * 3000
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (300,)


def test_a_long_wal_is_rewound_so_that_it_stops_growing(tmp_path):
    db = tmp_path / "s.db"
    writer, ckpt = _store(db), checkpoints.connect(str(db))
    _write(writer, 200)
    # A reader inside the WAL while the writer goes on (as under a steady load) keeps the writer
    # from rewinding it, however completely a PASSIVE checkpoint copied it.
    reader = _snapshot(db)
    first = checkpoints.checkpoint(ckpt, restart_frames=1000)
    assert not first.busy and first.checkpointed == first.wal_frames >= 200 and not first.restarted
    _write(writer, 200)
    reader.execute("COMMIT")
    assert _wal_frames(db) >= 400
    assert checkpoints.checkpoint(ckpt, restart_frames=1000).restarted is False   # below the mark
    result = checkpoints.checkpoint(ckpt, restart_frames=300)
    assert result.restarted and not result.busy
    _write(writer, 10)    # the next writer starts again from the WAL's first frame
    busy, frames, done = ckpt.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, frames, done) == (0, frames, frames) and frames < 30
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (410,)


def test_a_reader_on_an_older_snapshot_keeps_its_pages_and_nothing_waits(tmp_path):
    db = tmp_path / "s.db"
    writer, ckpt = _store(db), checkpoints.connect(str(db))
    _write(writer, 50)
    reader = _snapshot(db)
    _write(writer, 50)
    result = checkpoints.checkpoint(ckpt, restart_frames=10)
    assert result.checkpointed < result.wal_frames and not result.restarted   # copied what it could
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (50,)   # its snapshot is intact
    reader.execute("COMMIT")
    result = checkpoints.checkpoint(ckpt, restart_frames=10)
    assert not result.busy and result.restarted


def test_a_restart_does_not_wait_for_a_writer_holding_the_lock(tmp_path):
    db = tmp_path / "s.db"
    writer, ckpt = _store(db), checkpoints.connect(str(db))
    _write(writer, 100)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")   # holds the write lock
    other.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
    result = checkpoints.checkpoint(ckpt, restart_frames=10)
    assert result.busy and not result.restarted
    assert result.checkpointed == result.wal_frames   # the PASSIVE part copied everything committed
    other.execute("COMMIT")
    assert checkpoints.checkpoint(ckpt, restart_frames=10).restarted


def test_the_runner_opens_its_connections_with_the_configured_pragmas(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPPHONES_SQLITE_WAL_AUTOCHECKPOINT", "12345")
    monkeypatch.setenv("SIPPHONES_SQLITE_SYNCHRONOUS", "full")
    pragmas = load_settings(data_dir=str(tmp_path)).sqlite_pragmas()
    assert pragmas == SqlitePragmas("FULL", 12345)
    runner = SqliteRunner(str(tmp_path / "s.db"), pragmas)
    conn = runner._read_connection()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (12345,)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)   # FULL
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("name, value", [("SQLITE_WAL_AUTOCHECKPOINT", "-1"),
                                         ("SQLITE_CHECKPOINT_INTERVAL_MS", "-5"),
                                         ("SQLITE_CHECKPOINT_INTERVAL_MS", "often")])
def test_bad_checkpoint_settings_are_refused_with_a_sentence(tmp_path, monkeypatch, name, value):
    monkeypatch.setenv(f"SIPPHONES_{name}", value)
    with pytest.raises(ValueError, match=f"SIPPHONES_{name} must be"):
        load_settings(data_dir=str(tmp_path))


# --- the process --------------------------------------------------------------------------------

STARTER = """
import os, sys
from sipphones.storage.checkpoints import CheckpointProcess
p = CheckpointProcess.start(sys.argv[1], interval=0.05, restart_frames=int(sys.argv[2]))
print(p.pid, flush=True)
if sys.argv[3] == "orphan":
    os._exit(0)               # the parent dies without stopping it
sys.stdin.read()              # until the test closes our stdin
print("exit", p.stop(), flush=True)
"""


def _start(db: Path, mode: str, restart_frames: int = 1_000_000) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", STARTER, str(db), str(restart_frames), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def _until(check, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_the_process_keeps_the_wal_checkpointed_and_stops_cleanly(tmp_path):
    db = tmp_path / "s.db"
    writer = _store(db)
    proc, pid = _start(db, "wait", restart_frames=200)
    try:
        assert _until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == checkpoints.PROCESS_NAME.decode())
        before = os.path.getsize(db)
        _write(writer, 300)
        assert _until(lambda: os.path.getsize(db) > before + 300 * 3000), "no checkpoint copied the WAL"
        # Over the restart mark the WAL is rewound: later writes reuse its first frames.
        assert _until(lambda: (_write(writer, 1) or True) and
                      writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] < 50)
    finally:
        proc.stdin.close()
        out = proc.stdout.read()
        proc.wait(10)
    assert "exit 0" in out and gone(pid)


def test_the_process_ends_when_its_parent_dies(tmp_path):
    db = tmp_path / "s.db"
    _store(db)
    proc, pid = _start(db, "orphan")
    proc.wait(10)
    assert _until(lambda: gone(pid), 10), "the checkpoint process outlived its parent"


def test_the_process_ends_on_sigint_like_the_rest_of_a_terminal_group(tmp_path):
    db = tmp_path / "s.db"
    _store(db)
    proc, pid = _start(db, "wait")
    try:
        os.kill(pid, signal.SIGHUP)    # ignored: the supervisor's "replace the workers"
        time.sleep(0.2)
        assert not gone(pid)
        os.kill(pid, signal.SIGINT)
        assert _until(lambda: gone(pid), 10)
    finally:
        proc.stdin.close()
        out = proc.stdout.read()
        proc.wait(10)
    assert "exit 0" in out


# --- serve ---------------------------------------------------------------------------------------

def _checkpointers(pid: int) -> list[int]:
    return [p for p, comm in child_processes(pid).items() if comm == checkpoints.PROCESS_NAME.decode()]


PHONE = {"user_email": "alice@example.com", "user_name": "1001", "authorization_name": "1001", "password": "s3cret",
         "domain": "sip.example.com", "register_server": "192.0.2.10", "proxy_server": "192.0.2.10",
         "voice_mail": "4000"}


def test_serve_runs_the_checkpoints_in_a_process_of_their_own(tmp_path):
    srv = start_sqlite_server(tmp_path, workers=2)
    try:
        [ckpt] = _checkpointers(srv.proc.pid)
        workers = [p for p in child_processes(srv.proc.pid) if p != ckpt and
                   b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert workers
        for w in workers:   # the workers checkpoint only as a fallback
            env = Path(f"/proc/{w}/environ").read_bytes().split(b"\0")
            assert f"SIPPHONES_SQLITE_WAL_AUTOCHECKPOINT={checkpoints.FALLBACK_PAGES}".encode() in env
        creds = Admin(srv.database_url, srv.data_dir).account(users=("alice@example.com",))
        with token_client(srv, creds) as api:
            assert api.post("/v2/sip_phones", json=PHONE).status_code == 201
            assert len(api.get("/v2/sip_phones").json()["phones"]) == 1
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log()
    assert gone(ckpt)
    assert "checkpoint" not in srv.log().lower(), srv.log()   # no error reported
    conn = sqlite3.connect(f"file:{srv.data_dir / 'sipphones.db'}?mode=ro", uri=True)
    assert conn.execute("SELECT count(*) FROM sip_phones").fetchone() == (1,)


def test_one_worker_serve_leaves_no_checkpoint_process_behind(tmp_path):
    # With one worker uvicorn ends the process by the SIGTERM it caught, so serve's own clean-up
    # does not run: the parent-death signal ends the checkpoint process.
    srv = start_sqlite_server(tmp_path)
    try:
        [ckpt] = _checkpointers(srv.proc.pid)
        assert srv.client().get("/healthz").status_code == 200
    finally:
        srv.stop()
    assert _until(lambda: gone(ckpt), 10)
    assert "Traceback" not in srv.log(), srv.log()


def test_serve_without_the_checkpoint_process_when_told(tmp_path):
    srv = start_sqlite_server(tmp_path, extra_env={"SIPPHONES_SQLITE_CHECKPOINT_INTERVAL_MS": "0"})
    try:
        assert _checkpointers(srv.proc.pid) == []
        assert srv.client().get("/healthz").status_code == 200
    finally:
        srv.stop()
    assert "Traceback" not in srv.log(), srv.log()
