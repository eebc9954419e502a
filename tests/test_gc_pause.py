"""``serve`` pauses the cyclic garbage collector while a process starts (``sipphones.gc_pause``):
it must come back on in every process that serves, and nowhere else be touched."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port

import sipphones
from sipphones import gc_pause
from sipphones.api.app import create_app
from sipphones.config import load_settings

SRC = str(Path(sipphones.__file__).parents[1])


def test_pause_and_resume_touch_only_what_pause_turned_off():
    assert gc.isenabled()
    gc.disable()
    try:
        gc_pause.pause()              # already off (someone else's choice): not ours to turn on
        gc_pause.resume()
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc_pause.pause()
    try:
        assert not gc.isenabled() and gc_pause.paused()
    finally:
        gc_pause.resume()
    assert gc.isenabled() and not gc_pause.paused()
    gc_pause.resume()                 # nothing paused: nothing happens
    assert gc.isenabled()


def test_the_app_turns_a_paused_collector_back_on_once_started(tmp_path):
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", data_dir=str(tmp_path)))

    async def started() -> bool:
        async with app.router.lifespan_context(app):
            return gc.isenabled()

    gc_pause.pause()
    try:
        assert not gc.isenabled()
        assert asyncio.run(started())
    finally:
        gc_pause.resume()
    assert gc.isenabled()


@pytest.mark.parametrize("workers, enabled", [(1, False), (2, True)])
def test_serve_runs_uvicorn_with_the_collector_paused_only_where_the_app_starts(tmp_path, workers, enabled):
    # serve runs as usual up to serving, which here reports instead. One process: paused until the
    # app's lifespan resumes it. Several: the supervisor runs with
    # it on (each worker pauses its own, sipphones.cli.serving, and its app resumes it).
    code = ("import gc, sys\n"
            "from sipphones.cli import serving\n"
            "def report(*a, **k):\n"
            "    print(gc.isenabled())\n"
            "    raise SystemExit(0)\n"
            "serving.serve_one = serving.serve_workers = report\n"
            f"sys.argv = ['sipphones', 'serve', '--port', '{free_port()}', '--workers', '{workers}']\n"
            "from sipphones.cli.main import main\n"
            "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}
    env.update(PYTHONPATH=SRC, SIPPHONES_DATA_DIR=str(tmp_path), SIPPHONES_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == str(enabled)


def test_other_commands_leave_the_collector_alone(tmp_path):
    code = ("import gc, sys\n"
            "sys.argv = ['sipphones', 'accounts', 'list', '--json']\n"
            "from sipphones.cli.main import main\n"
            "try:\n"
            "    main()\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(gc.isenabled())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}
    env.update(PYTHONPATH=SRC, SIPPHONES_DATA_DIR=str(tmp_path), SIPPHONES_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert p.stdout.strip().splitlines()[-1] == "True", p.stdout + p.stderr
