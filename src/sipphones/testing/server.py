"""An emulator server for a test run: ``sipphones serve --emulator`` in a child process, on a
free port, over a SQLite file in a directory of its own, with an operator token made here.

``start()`` waits (within ``startup_timeout``) until the control plane answers ``/health``;
``stop()`` terminates the process and, past ``stop_timeout``, kills it. A server that exits
during start raises with the end of its output, so a bad seed file is reported, not waited on.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sipphones.testing.control import Control

PORT_ATTEMPTS = 5


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmulatorServer:
    def __init__(self, *, seed: str | Path | None = None, data_dir: str | Path | None = None,
                 host: str = "127.0.0.1", startup_timeout: float = 30.0, stop_timeout: float = 10.0,
                 env: dict[str, str] | None = None, database_url: str = "") -> None:
        """``database_url``: the store (default: a SQLite file in ``data_dir``). A reset empties
        it: give the emulator a database of its own."""
        self.database_url = database_url
        self.seed = str(Path(seed).resolve()) if seed else None
        self._own_dir = None if data_dir else tempfile.TemporaryDirectory(prefix="sipphones-emulator-")
        self.data_dir = Path(data_dir) if data_dir else Path(self._own_dir.name)
        self.host = host
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.admin_token = secrets.token_urlsafe(24)
        self.port = 0
        self._env = dict(env or {})
        self._process: subprocess.Popen | None = None
        self._log = None
        self.control: Control | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "EmulatorServer":
        last_error = ""
        for _ in range(PORT_ATTEMPTS):  # the port may be taken between finding and binding it
            self.port = free_port(self.host)
            error = self._start_once()
            if error is None:
                self.control = Control(self.url, self.admin_token)
                return self
            last_error = error
            if "address already in use" not in error.lower():
                break
        raise RuntimeError(f"the sipphones emulator did not start: {last_error}")

    def _start_once(self) -> str | None:
        env = {**os.environ, **self._env, "SIPPHONES_ADMIN_TOKEN": self.admin_token,
               "SIPPHONES_DATA_DIR": str(self.data_dir), "SIPPHONES_EMULATOR": "1"}
        env.pop("SIPPHONES_DATABASE_URL", None)  # by default the emulator's own SQLite file in data_dir
        if self.database_url:
            env["SIPPHONES_DATABASE_URL"] = self.database_url
        args = [sys.executable, "-m", "sipphones", "serve", "--emulator", "--host", self.host,
                "--port", str(self.port)]
        if self.seed:
            args += ["--seed", self.seed]
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_path = self.data_dir / "server.log"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self._close_log()
                    return log_path.read_text(errors="replace")[-2000:].strip() or "exited"
                try:
                    if http.get(f"{self.url}/_sipphones/v1/health", headers=headers).status_code == 200:
                        return None
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        return f"no answer within {self.startup_timeout:g} s"

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(self.stop_timeout)
        self._close_log()
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
