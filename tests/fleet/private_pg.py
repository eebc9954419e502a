"""A PostgreSQL cluster of the test's own (initdb + pg_ctl in a temporary directory, on a free
port), which the test may stop and start without touching the machine's shared server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.peers.procs import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return found[-1]


class PrivatePostgres:
    """``start()``, ``stop()``, ``url``; ``close()`` stops it and removes its files."""

    def __init__(self) -> None:
        # initdb refuses to run as root: run the server as ``postgres`` then, in a directory of its own
        # outside pytest's (root-only) temporary tree.
        self._as: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="sipphones-pg-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = free_port("127.0.0.1", udp=False)
        self.log = self.root / "postgres.log"
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60.0) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self) -> None:
        """A fast shutdown (connections cut, as a restart would)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def close(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
