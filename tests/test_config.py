"""Settings from the environment."""

from __future__ import annotations

import pytest

from sipphones.config import load_settings


def test_environment_values_are_typed(monkeypatch, tmp_path):
    monkeypatch.setenv("SIPPHONES_TOKEN_TTL", "42")
    monkeypatch.setenv("SIPPHONES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIPPHONES_SQLITE_SYNCHRONOUS", "full")
    s = load_settings()
    assert s.token_ttl == 42 and s.data_dir == tmp_path and s.sqlite_synchronous == "FULL"
    assert s.resolved_database_url() == f"sqlite:///{(tmp_path / 'sipphones.db').resolve()}"


def test_redis_timeout_and_breaker_cooldown(monkeypatch):
    defaults = load_settings()
    assert (defaults.redis_timeout_ms, defaults.redis_breaker_cooldown_ms) == (50, 2000)
    monkeypatch.setenv("SIPPHONES_REDIS_TIMEOUT_MS", "250")
    monkeypatch.setenv("SIPPHONES_REDIS_BREAKER_COOLDOWN_MS", "0")
    s = load_settings()
    assert (s.redis_timeout_ms, s.redis_breaker_cooldown_ms) == (250, 0)


@pytest.mark.parametrize("name,value", [("SIPPHONES_TOKEN_TTL", "soon"),
                                        ("SIPPHONES_SQLITE_SYNCHRONOUS", "NORMAL; DROP TABLE x"),
                                        ("SIPPHONES_REDIS_TIMEOUT_MS", "0"),
                                        ("SIPPHONES_REDIS_TIMEOUT_MS", "60001"),
                                        ("SIPPHONES_REDIS_TIMEOUT_MS", "fast"),
                                        ("SIPPHONES_REDIS_BREAKER_COOLDOWN_MS", "-1"),
                                        ("SIPPHONES_REDIS_BREAKER_COOLDOWN_MS", "3600001")])
def test_bad_environment_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        load_settings()


def test_cli_reports_a_bad_environment_value_in_one_sentence(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, SIPPHONES_TOKEN_TTL="soon", SIPPHONES_DATA_DIR=str(tmp_path))
    for command in (["accounts", "list"], ["serve", "--port", "1"]):
        proc = subprocess.run([sys.executable, "-m", "sipphones", *command], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip() == "error: SIPPHONES_TOKEN_TTL must be an integer, not 'soon'"
