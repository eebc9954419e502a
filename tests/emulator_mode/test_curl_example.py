"""The README's curl walk-through (examples/zoom_integration_curl.sh) runs as written against a
real emulator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sipphones.testing import EmulatorServer

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "zoom_integration_curl.sh"


def test_the_curl_example_runs_as_written(tmp_path):
    with EmulatorServer(data_dir=tmp_path) as server:
        env = {**os.environ, "SIPPHONES_URL": server.url, "SIPPHONES_ADMIN_TOKEN": server.admin_token}
        result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "create, attempt 1: HTTP 429\ncreate, attempt 2: HTTP 429\ncreate, attempt 3: HTTP 201" in result.stdout
        assert "creates recorded: 3" in result.stdout and "all checks passed" in result.stdout
        assert server.control.snapshot()["tables"]["accounts"] == []   # the script cleaned up
        assert server.control.clock.offset() == 0
