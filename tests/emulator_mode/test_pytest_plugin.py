"""The pytest plugin, as a user's suite meets it: the README's example project run by pytest in a
child process (so it loads the plugin by its entry point, as an installed sipphones does), and a
suite that never asks for an emulator never starts one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_zoom_integration.py"


def _pytest(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_the_readme_example_runs_as_written(tmp_path):
    (tmp_path / "test_zoom_integration.py").write_text(EXAMPLE.read_text())
    result = _pytest("test_zoom_integration.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_plugin_is_registered_by_entry_point():
    from importlib.metadata import entry_points

    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("sipphones") == "sipphones.testing.pytest_plugin"


def test_a_suite_that_does_not_ask_starts_nothing(tmp_path):
    """The plugin is loaded in every pytest run (ours too) but starts its server only for a test
    that asks for it: pointed at an address where nothing listens, a suite that does not use the
    fixtures passes, and one that does fails at once, naming the address."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    (tmp_path / "test_asks.py").write_text("def test_asks(sipphones):\n    pass\n")
    nowhere = ["--sipphones-url", "http://127.0.0.1:9", "--sipphones-admin-token", "x" * 20]
    assert _pytest("test_plain.py", *nowhere, cwd=tmp_path).returncode == 0
    asks = _pytest("test_asks.py", *nowhere, cwd=tmp_path)
    assert asks.returncode != 0 and "127.0.0.1:9" in asks.stdout


def test_markers_shape_the_account_and_each_test_is_reset(tmp_path):
    (tmp_path / "test_marks.py").write_text('''
import httpx, pytest

seen = []

@pytest.mark.sipphones(plan="free", users=["a@example.com"], scopes=["sip_phone:read:admin"])
def test_one(sipphones):
    seen.append(sipphones.account.account_id)
    r = httpx.get(sipphones.url + "/v2/users", headers=sipphones.account.headers)
    assert r.status_code == 400 and r.json()["code"] == 4711   # the app lacks the users scopes
    r = httpx.get(sipphones.url + "/v2/sip_phones", headers=sipphones.account.headers)
    assert r.headers["X-RateLimit-Type"] == "Daily-limit"
    sipphones.clock.advance(100)

def test_two(sipphones, sipphones_server):
    assert sipphones.clock.offset() == 0          # the clock was put back
    tables = sipphones_server.control.snapshot()["tables"]
    assert [a["id"] for a in tables["accounts"]] == [sipphones.account.account_id]   # test_one's is gone
    assert seen and seen[0] != sipphones.account.account_id

@pytest.mark.sipphones(colour="red")
def test_bad_marker(sipphones):
    pass
''')
    result = _pytest("test_marks.py", cwd=tmp_path)
    assert "2 passed" in result.stdout and "1 error" in result.stdout, result.stdout
    assert "does not take 'colour'" in result.stdout
