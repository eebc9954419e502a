"""``sipphones phones list|create|update|delete`` against a real ``sipphones serve``: the
command as a process (``python -m sipphones``), or in-process through Typer's CliRunner where
a prompt is answered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from typer.testing import CliRunner

from sipphones.cli.main import app
from sipphones.client import SipPhonesClient
from tests.client.fixtures import EMAIL, legacy_fields
from tests.servers import Credentials, free_port

CREATE = ["phones", "create", "--user-email", EMAIL, "--user-name", "1001", "--authorization-name", "alice",
          "--domain", "sip.example.com", "--register-server", "10.0.0.1:5060", "--transport-protocol", "tls",
          "--register-server2", "10.0.0.2", "--proxy-server2", "10.0.0.2", "--registration-expire-time", "30",
          "--voice-mail", "4000"]


@dataclass
class Result:
    code: int
    out: str
    err: str


def zoom_env(creds: Credentials, base_url: str) -> dict[str, str]:
    return {"ZOOM_ACCOUNT_ID": creds.account_id, "ZOOM_CLIENT_ID": creds.client_id,
            "ZOOM_CLIENT_SECRET": creds.client_secret, "ZOOM_API_BASE_URL": base_url}


def sipphones(env: dict[str, str], *args: str) -> Result:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "SIPPHONES_"))}
    base["COLUMNS"] = "200"  # tables as a wide terminal shows them
    p = subprocess.run([sys.executable, "-m", "sipphones", *args], capture_output=True, text=True, timeout=60,
                       env={**base, **env}, stdin=subprocess.DEVNULL)
    return Result(p.returncode, p.stdout, p.stderr)


def in_process(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    r = CliRunner().invoke(app, list(args), env=env, input=input)
    return Result(r.exit_code, r.stdout, r.stderr)


def one_sentence(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_create_list_update_delete(account, base_url):
    env = zoom_env(account, base_url)
    r = sipphones(env, *CREATE, "--password", "s3cret-pw", "--display-number", "+15550100", "--json")
    assert r.code == 0, r.err
    created = json.loads(r.out)
    assert created["password"] == "********" and created["transport_protocol"] == "TLS"
    assert created["proxy_server"] == "10.0.0.1:5060"  # defaults to the register server
    assert created["display_number"] == "+15550100"
    with SipPhonesClient(account.account_id, account.client_id, account.client_secret, base_url=base_url) as zoom:
        (stored,) = zoom.iter_phones()
    assert stored["password"] == "s3cret-pw" and stored["display_number"] == "+15550100"
    assert stored["server_2"]["register_server"] == "10.0.0.2" and stored["registration_expire_time"] == 30

    table = sipphones(env, "phones", "list")
    assert table.code == 0 and created["id"] in table.out and "s3cret-pw" not in table.out and "****" in table.out
    shown = json.loads(sipphones(env, "phones", "list", "--json", "--show-passwords").out)
    assert [(p["id"], p["password"]) for p in shown] == [(created["id"], "s3cret-pw")]

    # a partial change: the legacy PATCH gets the other fields from the list
    r = sipphones(env, "phones", "update", created["id"], "--voice-mail", "5000", "--register-server3", "10.0.0.3",
                  "--proxy-server3", "10.0.0.3", "--transport-protocol3", "TCP")
    assert r.code == 0, r.err
    (after,) = json.loads(sipphones(env, "phones", "list", "--json", "--show-passwords").out)
    assert after == {**shown[0], "voice_mail": "5000", "register_server3": "10.0.0.3", "proxy_server3": "10.0.0.3",
                     "transport_protocol3": "TCP"}

    r = sipphones(env, "phones", "delete", created["id"], "--yes")
    assert r.code == 0, r.err
    assert json.loads(sipphones(env, "phones", "list", "--json").out) == []


def test_options_instead_of_the_environment(account, base_url):
    r = sipphones({}, "phones", "list", "--json", "--base-url", base_url, "--account-id", account.account_id,
                  "--client-id", account.client_id, "--client-secret", account.client_secret)
    assert (r.code, json.loads(r.out)) == (0, [])


def test_zoom_errors_are_one_sentence_with_code_and_field_errors(account, base_url):
    env = zoom_env(account, base_url)
    r = sipphones(env, *CREATE[:-2], "--voice-mail", "", "--password", "pw", "--domain", "bad domain!",
                  "--registration-expire-time", "500")
    assert r.code == 1 and one_sentence(r.err), r.err
    assert "HTTP 400, code 300: Validation Failed." in r.err
    assert "domain:" in r.err and "registration_expire_time:" in r.err

    r = sipphones(env, "phones", "delete", "NoSuchPhone", "--yes")
    assert r.code == 1 and one_sentence(r.err) and "code 300" in r.err, r.err
    r = sipphones(env, "phones", "update", "NoSuchPhone", "--voice-mail", "1")
    assert r.code == 1 and one_sentence(r.err) and "no SIP phone with id NoSuchPhone" in r.err, r.err
    r = sipphones(env, *CREATE, "--password", "pw", "--transport-protocol3", "SCTP")
    assert r.code == 1 and one_sentence(r.err) and "--transport-protocol3 must be one of" in r.err, r.err


def test_bad_credentials_unreachable_service_and_missing_settings(account, base_url):
    r = sipphones({**zoom_env(account, base_url), "ZOOM_CLIENT_SECRET": "wrong"}, "phones", "list")
    assert r.code == 1 and one_sentence(r.err) and "HTTP 401, code 4704" in r.err, r.err
    dead = f"http://127.0.0.1:{free_port()}/v2"
    r = sipphones({**zoom_env(account, dead)}, "phones", "list", "--max-retries", "0")
    assert r.code == 1 and one_sentence(r.err) and "no answer from the service" in r.err, r.err
    r = sipphones({"ZOOM_API_BASE_URL": base_url}, "phones", "list")
    assert r.code == 1 and one_sentence(r.err) and "ZOOM_ACCOUNT_ID" in r.err, r.err


def test_delete_asks_first(account, base_url):
    env = zoom_env(account, base_url)
    with SipPhonesClient(account.account_id, account.client_id, account.client_secret, base_url=base_url) as zoom:
        phone = zoom.legacy_create_phone(legacy_fields())
    r = sipphones(env, "phones", "delete", phone["id"])  # no terminal, no answer: kept
    assert r.code == 1 and one_sentence(r.err) and "not deleted" in r.err, r.err
    r = in_process(env, "phones", "delete", phone["id"], input="n\n")
    assert r.code == 1 and "not deleted" in r.err
    assert len(json.loads(sipphones(env, "phones", "list", "--json").out)) == 1
    r = in_process(env, "phones", "delete", phone["id"], input="y\n")
    assert r.code == 0, r.err
    assert json.loads(sipphones(env, "phones", "list", "--json").out) == []


def test_create_prompts_for_a_hidden_password(account, base_url):
    env = zoom_env(account, base_url)
    r = in_process(env, *CREATE, "--json", input="typed-pw\ntyped-pw\n")
    assert r.code == 0, r.err
    assert "typed-pw" not in r.out
    shown = json.loads(sipphones(env, "phones", "list", "--json", "--show-passwords").out)
    assert [p["password"] for p in shown] == ["typed-pw"]
