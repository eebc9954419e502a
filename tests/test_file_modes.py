"""Files of the service are private to its user: the master key, the data directory, the SQLite
files (issue 10: a local user read the key while it was being made, and the store's e-mails and
secret hashes from files of mode 0644)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import sipphones
from tests.servers import free_port

SRC = str(Path(sipphones.__file__).parents[1])

# Runs in its own process (an audit hook cannot be removed): with a umask of 0, every file
# operation of the key's creation first looks at every entry of the data directory and notes
# the ones that another user could open at that moment.
WATCH_KEY_CREATION = r"""
import json, os, stat, sys
from pathlib import Path
from sipphones.storage.keys import load_master_key

data_dir = Path(sys.argv[1])
seen = []
looking = False

def look(event, args):
    global looking
    if looking or not event.startswith(("open", "os.")) or not data_dir.exists():
        return
    looking = True   # listing the directory is an audited event too
    try:
        for entry in [data_dir, *data_dir.iterdir()]:
            mode = stat.S_IMODE(os.lstat(entry).st_mode)
            if mode & 0o077:
                seen.append([event, entry.name, oct(mode)])
    finally:
        looking = False

os.umask(0)
sys.addaudithook(look)
load_master_key("", data_dir)
looking = True
print(json.dumps(seen))
"""


def test_the_master_key_is_never_readable_by_others_while_it_is_made(tmp_path):
    data_dir = tmp_path / "data"
    p = subprocess.run([sys.executable, "-c", WATCH_KEY_CREATION, str(data_dir)], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1]) == []
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data_dir / "secret.key").st_mode) == 0o600
    assert [e.name for e in data_dir.iterdir()] == ["secret.key"]   # no temporary file left


def test_a_master_key_file_readable_by_others_is_made_private(tmp_path, caplog):
    from sipphones.storage.keys import load_master_key

    first = load_master_key("", tmp_path)
    key = tmp_path / "secret.key"
    os.chmod(key, 0o644)
    assert load_master_key("", tmp_path) == first
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert f"{key} was readable by other users (mode 0644): now 0600" in caplog.text
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _serve(data_dir: Path, log_path: Path, umask: int) -> subprocess.Popen:
    """``sipphones serve`` with nothing but its data directory set (the default SQLite file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}
    env["SIPPHONES_DATA_DIR"] = str(data_dir)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sipphones", "serve", "--port", str(port)],
                            stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env, umask=umask)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            # A token request reads the store: the connections open, -wal and -shm exist.
            r = httpx.post(f"http://127.0.0.1:{port}/oauth/token?grant_type=account_credentials&account_id=x",
                           auth=("nobody", "nothing"), timeout=1)
            if r.status_code == 401:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    proc.wait(5)
    raise AssertionError(f"serve did not start: {log_path.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def test_serve_keeps_the_data_directory_and_the_store_private(tmp_path):
    data_dir = tmp_path / "data"
    proc = _serve(data_dir, tmp_path / "serve.log", umask=0o022)
    try:
        modes = {p.name: _mode(p) for p in data_dir.iterdir()}
        assert _mode(data_dir) == 0o700
        assert modes == {"sipphones.db": 0o600, "sipphones.db-wal": 0o600, "sipphones.db-shm": 0o600,
                         "secret.key": 0o600}
    finally:
        _stop(proc)


def test_an_existing_store_readable_by_others_is_made_private(tmp_path, caplog):
    from sipphones.storage.database import migrate

    db = tmp_path / "s.db"
    migrate(f"sqlite:///{db}")
    reader = sqlite3.connect(db)   # open: its -wal and -shm exist
    reader.execute("SELECT count(*) FROM accounts").fetchone()
    names = ("s.db", "s.db-wal", "s.db-shm")
    for name in names:
        os.chmod(tmp_path / name, 0o644)
    migrate(f"sqlite:///{db}")
    assert {name: _mode(tmp_path / name) for name in names} == dict.fromkeys(names, 0o600)
    assert caplog.text.count("was readable by other users (mode 0644): now 0600") == 3
    assert reader.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
    reader.close()


def test_serve_warns_of_a_data_directory_open_to_others_and_leaves_it(tmp_path):
    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    proc = _serve(data_dir, tmp_path / "serve.log", umask=0o022)
    _stop(proc)
    assert _mode(data_dir) == 0o755
    assert _mode(data_dir / "sipphones.db") == 0o600 and _mode(data_dir / "secret.key") == 0o600
    log = (tmp_path / "serve.log").read_text()
    assert f"warning: the directory {data_dir} is open to other users (mode 0755)" in log


@pytest.mark.parametrize("content", [b"not base64 at all!\n", b"\xff\xfe\x00garbage", b"c2hvcnQ=\n"])
def test_a_corrupt_key_file_is_named_in_one_sentence(tmp_path, content):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_bytes(content)
    os.chmod(data / "secret.key", 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}
    p = subprocess.run([sys.executable, "-m", "sipphones", "accounts", "create", "--name", "X", "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(data / "secret.key") in lines[0] and "corrupt" in lines[0], p.stderr
