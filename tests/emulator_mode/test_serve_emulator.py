"""``sipphones serve --emulator`` / ``--seed`` on the command line: what it refuses, and the
operator token it prints when it made one."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.servers import free_port, wait_for


def _serve(tmp_path, *args, env_extra=None, timeout=60):
    env = {**os.environ, "SIPPHONES_DATA_DIR": str(tmp_path), **(env_extra or {})}
    env.pop("SIPPHONES_ADMIN_TOKEN", None)
    env.pop("SIPPHONES_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "sipphones", "serve", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_bad_seed_file_is_refused_before_listening(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text("accounts:\n  - name: A\n    plan: gold\n")
    r = _serve(tmp_path, "--seed", str(seed), "--port", str(free_port()))
    assert r.returncode == 1 and "accounts[0]: plan must be one of free, pro, business" in r.stderr
    seed.write_text("accounts:\n  - name: A\n    phones:\n      - {user_email: nobody@example.com, user_name: '1', "
                    "authorization_name: '1', password: p, domain: sip.example.com, register_server: 192.0.2.1, "
                    "proxy_server: 192.0.2.1, transport_protocol: UDP, voice_mail: '1'}\n")
    # a phone of a user the seed does not have: the server says which entry, and does not start
    proc = subprocess.Popen([sys.executable, "-m", "sipphones", "serve", "--seed", str(seed), "--port", str(free_port())],
                            env={**os.environ, "SIPPHONES_DATA_DIR": str(tmp_path)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "accounts[0].phones[0]" in out
    r = _serve(tmp_path, "--seed", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "cannot read the seed file" in r.stderr


def test_emulator_mode_runs_one_worker(tmp_path):
    r = _serve(tmp_path, "--emulator", "--workers", "2")
    assert r.returncode == 1 and "one worker process" in r.stderr
    r = _serve(tmp_path, "--demo", "--seed", "x.yaml")
    assert r.returncode == 1 and "use one of them" in r.stderr


def test_a_generated_operator_token_is_printed(tmp_path):
    port = free_port()
    env = {**os.environ, "SIPPHONES_DATA_DIR": str(tmp_path)}
    env.pop("SIPPHONES_ADMIN_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "sipphones", "serve", "--emulator", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        def token_line():
            line = proc.stdout.readline()
            lines.append(line)
            return "operator token:" in line
        wait_for("the operator token line", token_line, timeout=60)
        token = lines[-1].split("operator token: ")[1].rstrip(")\n")
        base = f"http://127.0.0.1:{port}/_sipphones/v1/health"
        wait_for("the control plane", lambda: httpx.get(base, headers={"Authorization": f"Bearer {token}"}).status_code == 200)
        assert httpx.get(base, headers={"Authorization": "Bearer not-the-token-1234"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(20)
