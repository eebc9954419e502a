"""A PostgreSQL cluster of the test's own (initdb / pg_ctl from /usr/lib/postgresql/*/bin) on a
free loopback port in a temporary directory, which the test may stop and start at will: the
machine's shared PostgreSQL is never touched.

PostgreSQL refuses to run as root: when the tests run as root, the cluster runs as the
``postgres`` system user (``runuser``) in a directory handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                           "(scripts/bootstrap.sh installs postgresql)")
    return Path(found[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class OwnPostgres:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = START_TIMEOUT + 10) -> None:
        cmd = _as_owner([str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(START_TIMEOUT),
                         *args])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {out.stdout}{out.stderr}\n{self.log()}")

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        self._pg_ctl("-l", str(self.root / "postgres.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: open sessions are ended (the clients see their connections close)."""
        self._pg_ctl("-m", mode, "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    @classmethod
    def create(cls) -> "OwnPostgres":
        """initdb in a new private temporary directory (owned by the postgres user when the
        tests run as root), then start the server on a free port."""
        root = Path(tempfile.mkdtemp(prefix="sipphones-pg-"))  # mode 0700
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            shutil.chown(root, owner.pw_uid, owner.pw_gid)
        server = cls(root, free_port())
        out = subprocess.run(
            _as_owner([str(postgres_bin() / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust",
                       "--no-sync", "-E", "UTF8", "--locale=C"]),
            capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {out.stdout}{out.stderr}")
        with open(server.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{root}'\nmax_connections = 60\n"
                       "shared_buffers = 32MB\nfsync = on\nsynchronous_commit = on\n")
        server.start()
        return server

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until_accepting(url: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
