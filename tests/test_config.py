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
                                        ("SIPPHONES_WORKER_HEALTHCHECK_S", "0"),
                                        ("SIPPHONES_WORKER_HEALTHCHECK_S", "3601"),
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


def test_http_limits_are_typed_and_bad_ones_refused(monkeypatch):
    monkeypatch.setenv("SIPPHONES_HTTP_MAX_BODY_BYTES", "1024")
    monkeypatch.setenv("SIPPHONES_API_URL", " https://api.example.com/ ")
    s = load_settings()
    assert s.http_max_body_bytes == 1024 and s.api_url == "https://api.example.com"
    assert (s.http_max_form_bytes, s.http_max_head_bytes, s.http_keep_alive_s, s.http_idle_timeout_s,
            s.http_header_timeout_s, s.http_max_connections) == (8192, 32768, 75, 10, 10, 4096)
    for name, value, message in (("SIPPHONES_HTTP_KEEP_ALIVE_S", "0", "must be 1 or more"),
                                 ("SIPPHONES_HTTP_MAX_CONNECTIONS", "many", "must be an integer"),
                                 ("SIPPHONES_API_URL", "ftp://api.example.com", "must be an http:// or https:// URL"),
                                 ("SIPPHONES_API_URL", "https://api.example.com/?q=1", "without query")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=message):
            load_settings()
        monkeypatch.delenv(name)


def test_serve_refuses_a_bad_http_option_in_one_sentence(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, SIPPHONES_DATA_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "sipphones", "serve", "--port", "1", "--keep-alive", "0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == "error: SIPPHONES_HTTP_KEEP_ALIVE_S must be 1 or more, not 0"
