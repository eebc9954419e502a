"""``serve`` must answer /healthz within a second of its launch (issue #2): what the start does
not need stays unimported. The CLI's entry point does not pull in what only other commands use,
and with several workers the supervisor process (which only migrates, makes the key and starts
the workers; each worker imports the app) imports neither the app nor its libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sipphones
from tests.servers import free_port

SRC = str(Path(sipphones.__file__).parents[1])
# Libraries the API app needs but the CLI's entry point and the supervisor do not.
APP_ONLY = {"sqlalchemy", "alembic", "jwt", "cryptography", "limits", "starlette", "rich", "orjson"}


def _imported_tops(code: str, env: dict[str, str] | None = None) -> set[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}  # no Redis, no other store
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**base, "PYTHONPATH": SRC, **(env or {})})
    assert p.returncode == 0, p.stderr
    return set(json.loads(p.stdout.strip().splitlines()[-1]))


TOPS = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"


def test_the_cli_entry_point_imports_no_library_of_the_app():
    assert _imported_tops("import sipphones.cli.main; " + TOPS) & APP_ONLY == set()


def test_the_cli_entry_point_imports_neither_the_api_client_nor_its_libraries():
    # ``sipphones phones`` imports sipphones.client (httpx, tenacity) inside its commands.
    assert _imported_tops("import sipphones.cli.main; " + TOPS) & {"httpx", "tenacity"} == set()


def test_a_multi_worker_supervisor_imports_no_library_of_the_app(tmp_path):
    # serve runs as usual up to starting its workers, which here reports the modules instead.
    code = ("import sys\n"
            "from sipphones.cli import serving\n"
            "def report(*a, **k):\n"
            "    " + TOPS + "\n"
            "    raise SystemExit(0)\n"
            "serving.serve_workers = report\n"
            f"sys.argv = ['sipphones', 'serve', '--port', '{free_port()}', '--workers', '2']\n"
            "from sipphones.cli.main import main\n"
            "main()\n")
    env = {"SIPPHONES_DATA_DIR": str(tmp_path), "SIPPHONES_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    assert _imported_tops(code, env) & APP_ONLY == set()
    assert (tmp_path / "new.db").exists()  # the database was created (at the head) all the same


def test_a_worker_without_redis_imports_neither_limits_nor_alembic(tmp_path):
    # What a worker of ``serve`` does before it answers: the app and its state, on a database
    # the supervisor has migrated. ``limits`` serves only Redis counters; Alembic only migrations.
    code = ("from sipphones.storage.database import migrate; from sipphones.config import load_settings\n"
            "s = load_settings(); migrate(s.resolved_database_url())\n"
            "import sipphones.api.app\n"
            "from sipphones.api.state import AppState\n"
            "AppState.build(s, run_migrations=False)\n" + TOPS)
    env = {"SIPPHONES_DATA_DIR": str(tmp_path), "SIPPHONES_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    assert _imported_tops(code, env) & {"limits", "alembic"} == set()
