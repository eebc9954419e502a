"""A real HTTP server process serving the API plus the check extension, for the extension's tests.

``create_app(extra_routes=...)`` is how the extension is mounted; this module is the uvicorn
factory that does it (``sipphones serve`` does the same once ``sipphones.api.app`` lists
``sipphones.api.check.routes``). Settings come from the environment, as in ``serve``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def create():
    from sipphones.api import check
    from sipphones.api.app import create_app

    return create_app(extra_routes=check.routes)


def start_check_server(database_url: str, data_dir: Path, extra_env: dict | None = None) -> ServerProcess:
    port = free_port()
    env = dict(os.environ)
    env.update({"SIPPHONES_DATABASE_URL": database_url, "SIPPHONES_DATA_DIR": str(data_dir),
                "PYTHONPATH": str(ROOT)})
    env.pop("SIPPHONES_REDIS_URL", None)
    env.update(extra_env or {})
    log_path = data_dir / f"check-server-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "tests.cli_sip.check_server:create",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
    server = ServerProcess(database_url, data_dir, port, proc, log_path, env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")
