"""The operator CLI (``sipphones accounts|apps|users``) on the running server's database, and
``serve --demo`` whose printed curl example must work as printed."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

import httpx
import pytest

from tests.api.zoom import assert_error, legacy_body, legacy_phones, token_client
from tests.servers import Credentials, ServerProcess, free_port, get_token, start_server

SIP_SCOPES = {
    "sip_phone:read:admin", "sip_phone:write:admin", "sip_phone:read:list_sip_phones:admin",
    "sip_phone:write:sip_phone:admin", "sip_phone:update:sip_phone:admin", "sip_phone:delete:sip_phone:admin",
}


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self):
        assert self.code == 0, (self.args, self.code, self.err)
        return json.loads(self.out)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPPHONES_")}
    env["COLUMNS"] = "200"
    return env


def _argv(server: ServerProcess, args: tuple[str, ...], database_url: str | None) -> list[str]:
    return [sys.executable, "-m", "sipphones", *args, "--database-url", database_url or server.database_url,
            "--data-dir", str(server.data_dir)]


def cli(server: ServerProcess, *args: str, database_url: str | None = None) -> Result:
    p = subprocess.run(_argv(server, args, database_url), capture_output=True, text=True, timeout=60, env=_env())
    return Result(args, p.returncode, p.stdout, p.stderr)


def cli_many(server: ServerProcess, *commands: tuple[str, ...], database_url: str | None = None) -> list[Result]:
    """Independent commands, run at the same time (each is a separate process start)."""
    procs = [(args, subprocess.Popen(_argv(server, args, database_url), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=_env())) for args in commands]
    results = []
    for args, p in procs:
        try:
            out, err = p.communicate(timeout=90)
        finally:
            if p.poll() is None:
                p.kill()
        results.append(Result(args, p.returncode, out, err))
    return results


def test_accounts_create_list_update_delete(server):
    acc = cli(server, "accounts", "create", "--name", "CLI Corp", "--plan", "business",
              "--no-sip-phone-integration", "--json").json()
    assert acc["name"] == "CLI Corp" and acc["plan"] == "business" and acc["sip_phone_integration"] is False
    listed = {a["id"]: a for a in cli(server, "accounts", "list", "--json").json()}
    assert listed[acc["id"]] == acc

    upd = cli(server, "accounts", "update", acc["id"], "--plan", "FREE", "--sip-phone-integration", "--name",
              "Renamed", "--json").json()
    assert (upd["plan"], upd["sip_phone_integration"], upd["name"]) == ("free", True, "Renamed")
    assert {a["id"]: a for a in cli(server, "accounts", "list", "--json").json()}[acc["id"]] == upd

    assert cli(server, "accounts", "delete", acc["id"], "--json").json() == {"deleted": acc["id"]}
    assert acc["id"] not in {a["id"] for a in cli(server, "accounts", "list", "--json").json()}


def test_apps_and_users_work_against_the_running_server(server):
    acc = cli(server, "accounts", "create", "--name", "Ops", "--json").json()
    assert acc["plan"] == "pro" and acc["sip_phone_integration"] is True
    app, user, narrow, comma = cli_many(
        server,
        ("apps", "create", "--account", acc["id"], "--json"),
        ("users", "create", "--account", acc["id"], "--email", "Zed@Example.com", "--first-name", "Zed",
         "--last-name", "Zulu", "--json"),
        ("apps", "create", "--account", acc["id"], "--scopes", "sip_phone:read:admin sip_phone:write:sip_phone:admin",
         "--json"),
        ("apps", "create", "--account", acc["id"], "--scopes", "sip_phone:read:list_sip_phones:admin,user:read:admin",
         "--json"),
    )
    app, user, narrow, comma = app.json(), user.json(), narrow.json(), comma.json()
    assert set(app["scopes"]) >= SIP_SCOPES  # the default: every SIP phone scope
    # ... and every role permission, the users endpoints' included
    assert app["permissions"] == ["SipPhone:Read", "SipPhone:Edit", "User:Read", "User:Edit"]
    assert app["client_secret"] and app["account_id"] == acc["id"]
    assert set(narrow["scopes"]) == {"sip_phone:read:admin", "sip_phone:write:sip_phone:admin"}
    assert set(comma["scopes"]) == {"sip_phone:read:list_sip_phones:admin", "user:read:admin"}
    assert user["email"] == "zed@example.com" and (user["first_name"], user["last_name"]) == ("Zed", "Zulu")

    creds = Credentials(acc["id"], app["client_id"], app["client_secret"])
    with token_client(server, creds) as api, server.client() as http:
        r = http.post("/oauth/token", auth=(comma["client_id"], comma["client_secret"]),
                      data={"grant_type": "account_credentials", "account_id": acc["id"]})
        assert set(r.json()["scope"].split()) == set(comma["scopes"])
        assert [u["email"] for u in api.get("/v2/users").json()["users"]] == ["zed@example.com"]
        phone = api.post("/v2/sip_phones", json=legacy_body("zed@example.com.mac")).json()

        apps = cli(server, "apps", "list", "--account", acc["id"], "--json")
        assert {a["client_id"] for a in apps.json()} == {app["client_id"], narrow["client_id"], comma["client_id"]}
        for secret in (app["client_secret"], narrow["client_secret"], comma["client_secret"]):
            assert secret not in apps.out  # shown once, at creation only
        assert all("client_secret" not in a for a in apps.json())

        users = cli(server, "users", "list", "--account", acc["id"], "--json").json()
        assert [(u["id"], u["email"]) for u in users] == [(user["id"], "zed@example.com")]

        # The switch, changed by the operator while the server runs, takes effect at once.
        cli(server, "accounts", "update", acc["id"], "--no-sip-phone-integration", "--json").json()
        assert_error(api.get("/v2/sip_phones"), 400, 200)
        cli(server, "accounts", "update", acc["id"], "--sip-phone-integration", "--json").json()
        assert list(legacy_phones(api)) == [phone["id"]]

        # Deleting the user deletes the user's phones.
        assert cli(server, "users", "delete", "zed@example.com", "--account", acc["id"], "--json").json() == {
            "deleted": "zed@example.com"}
        assert legacy_phones(api) == {}
        assert cli(server, "users", "list", "--account", acc["id"], "--json").json() == []

        # Deleting the app kills its tokens at once.
        assert cli(server, "apps", "delete", app["client_id"], "--json").json() == {"deleted": app["client_id"]}
        assert_error(api.get("/v2/sip_phones"), 401, 124)
        r = http.post("/oauth/token", auth=(app["client_id"], app["client_secret"]),
                      data={"grant_type": "account_credentials", "account_id": acc["id"]})
        assert_error(r, 401, 4702)


def test_text_output_shows_the_whole_secret(server):
    acc = cli(server, "accounts", "create", "--name", "Text", "--json").json()
    r = cli(server, "apps", "create", "--account", acc["id"])
    assert r.code == 0, r.err
    fields = dict(line.split(None, 1) for line in r.out.splitlines() if line.strip())
    creds = Credentials(acc["id"], fields["client_id"].strip(), fields["client_secret"].strip())
    with server.client() as http:
        assert get_token(http, creds)


def test_bad_input_is_one_sentence_and_exit_code_1(server):
    acc = cli(server, "accounts", "create", "--name", "Victim", "--json").json()
    cli(server, "users", "create", "--account", acc["id"], "--email", "dup@example.com", "--json").json()
    url = server.database_url
    cases = [  # (arguments, database URL, a word the sentence must contain)
        (("accounts", "create", "--name", "X", "--plan", "gold"), url, "gold"),
        (("accounts", "update", "NoSuchAccount", "--plan", "free"), url, "NoSuchAccount"),
        (("accounts", "create", "--name", "n" * 300), url, "255"),
        (("apps", "create", "--account", "NoSuchAccount"), url, "NoSuchAccount"),
        (("apps", "list", "--account", "NoSuchAccount"), url, "NoSuchAccount"),
        (("check", "--all", "--nameserver", "bad:port"), url, "bad:port"),
        (("check", "--all", "--nameserver", "127.0.0.1:70000"), url, "70000"),
        (("monitor", "--nameserver", "bad:port"), url, "bad:port"),
        (("apps", "create", "--account", acc["id"], "--scopes", "sip_phone:read:admin,bogus:scope"), url, "bogus:scope"),
        (("apps", "create", "--account", acc["id"], "--permissions", "SipPhone:Read,User:Admin"), url,
         "User:Admin"),
        (("users", "create", "--account", "NoSuchAccount", "--email", "a@example.com"), url, "NoSuchAccount"),
        (("users", "create", "--account", acc["id"], "--email", "not-an-email"), url, "email"),
        (("users", "create", "--account", acc["id"], "--email", "DUP@example.com"), url, "dup@example.com"),
        (("accounts", "list", "--json"), "foo://x/y", "foo"),
        (("users", "list", "--account", acc["id"]), "not a url", "not a url"),
        (("apps", "list", "--json"), "postgresql://nobody:secretpw@127.0.0.1:1/x", "127.0.0.1"),
    ]
    checked = []
    for db in dict.fromkeys(c[1] for c in cases):  # one batch of parallel processes per URL
        batch = [c for c in cases if c[1] == db]
        checked += zip(cli_many(server, *[c[0] for c in batch], database_url=db), [c[2] for c in batch])
    assert len(checked) == len(cases)
    for r, word in checked:
        assert r.code == 1, (r.args, r.code, r.out, r.err)
        assert r.out == "", (r.args, r.out)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1, (r.args, r.err)
        assert lines[0].startswith("error: ") and word.lower() in lines[0].lower(), (r.args, r.err)
        assert "Traceback" not in r.err and "secretpw" not in r.err
    # Nothing was half-done.
    users = cli(server, "users", "list", "--account", acc["id"], "--json").json()
    assert [u["email"] for u in users] == ["dup@example.com"]


def test_a_command_on_a_missing_sqlite_file_names_it_and_creates_nothing(server, tmp_path):
    missing = tmp_path / "typo.db"
    url = f"sqlite:///{missing}"
    for args in (("accounts", "list"), ("apps", "list"), ("users", "list", "--account", "A"),
                 ("check", "--all"), ("monitor",)):
        r = cli(server, *args, database_url=url)
        assert r.code == 1 and r.out == "", (args, r.code, r.out, r.err)
        assert r.err.strip().splitlines() == [r.err.strip()] and "no database at" in r.err and str(missing) in r.err, r.err
        assert not missing.exists(), args
    # The command that starts a store creates it.
    created = cli(server, "accounts", "create", "--name", "New", "--json", database_url=url).json()
    assert missing.exists()
    assert [a["id"] for a in cli(server, "accounts", "list", "--json", database_url=url).json()] == [created["id"]]


# --- serve --demo --------------------------------------------------------------------------------

def _demo_output(srv: ServerProcess) -> str:
    text = srv.log()
    assert "Demo account ready." in text, text
    return text


def _run_demo_example(text: str) -> dict:
    """Run the printed example as printed (curl and python3 only); the created phone, after
    checking the HTTP status line the example prints."""
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith(("TOKEN=", "curl "))]
    assert len(commands) == 2 and "/v2/sip_phones/phones " in commands[1], text
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(commands)], capture_output=True,
                       text=True, timeout=60, env=env)
    assert p.returncode == 0, (p.stdout, p.stderr)
    body, status = p.stdout.rstrip("\n").rsplit("\n", 1)
    assert status == "HTTP 201", p.stdout
    return json.loads(body)


def test_serve_demo_prints_credentials_and_a_curl_example_that_works(server):
    demo = start_server(server.database_url, server.data_dir, extra_args=["--demo"])
    try:
        text = _demo_output(demo)
        account = re.search(r"account_id:\s+(\S+)", text).group(1)
        client_id = re.search(r"client_id:\s+(\S+)", text).group(1)
        secret = re.search(r"client_secret:\s+(\S+)", text).group(1)
        assert f":{demo.port}/" in text
        created = _run_demo_example(text)
        assert created["phone_id"] and created["user_email"].endswith(("example.com", ".pc", ".mobile", ".pad"))
        with token_client(demo, Credentials(account, client_id, secret)) as api:
            phones = legacy_phones(api)
            assert phones[created["phone_id"]]["user_email"] == created["user_email"]
            users = {u["email"] for u in api.get("/v2/users").json()["users"]}
            assert len(users) >= 3
    finally:
        demo.stop()
    # A second start prints a fresh app (replacing the first: still one demo app) and an address
    # that is still free: the example works again.
    again = start_server(server.database_url, server.data_dir, extra_args=["--demo"])
    try:
        text = _demo_output(again)
        assert _run_demo_example(text)["phone_id"] != created["phone_id"]
        new_client = re.search(r"client_id:\s+(\S+)", text).group(1)
        apps = cli(server, "apps", "list", "--account", account, "--json").json()
        assert [a["client_id"] for a in apps if a["name"] == "Demo app"] == [new_client]
    finally:
        again.stop()


def test_serve_refuses_a_port_out_of_range_and_a_busy_port_in_one_sentence(server, tmp_path):
    for port in ("0", "74335", "-1"):
        p = subprocess.run([sys.executable, "-m", "sipphones", "serve", "--port", port, "--data-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=60, env=_env())
        assert p.returncode != 0 and "Traceback" not in p.stderr, (port, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "65535" in lines[0], (port, p.stderr)
    p = subprocess.run([sys.executable, "-m", "sipphones", "serve", "--port", str(server.port),
                        "--database-url", server.database_url, "--data-dir", str(server.data_dir)],
                       capture_output=True, text=True, timeout=60, env=_env())
    assert p.returncode == 1 and "listening" not in p.stdout, (p.stdout, p.stderr)
    assert p.stderr.strip().splitlines() == [p.stderr.strip()], p.stderr
    assert f"port {server.port} is already in use" in p.stderr, p.stderr


def test_serve_says_listening_only_once_the_port_takes_connections(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sipphones", "serve", "--port", str(port), "--workers", "2",
                             "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("sipphones listening on "), line
        # At once, before any worker has started: the connection is taken (it waits in the
        # backlog) and answered once a worker serves.
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            conn.settimeout(60)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_get_root_leads_to_the_console(server):
    r = httpx.get(f"{server.base_url}/", headers={"Host": "evil.example"})
    assert r.status_code == 302 and r.headers["location"] == "/console"


@pytest.mark.parametrize("url", ["foo://x/y", "postgresql://127.0.0.1:1/x"])
def test_serve_with_a_bad_database_url_fails_in_one_sentence(tmp_path, url):
    env = _env()
    p = subprocess.run([sys.executable, "-m", "sipphones", "serve", "--port", "1", "--database-url", url,
                        "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in p.stderr, p.stderr
