"""`sipphones phones import --store`: the import written straight into a store (no HTTP), with the
same checks and answers as through the API; idempotent; refused with a sentence when the account
or the file is wrong. Through the real CLI on a real SQLite store and a real PostgreSQL database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import POSTGRES_URL
from tests.pg import fresh_postgres_database

CLI = [sys.executable, "-m", "sipphones"]
HEADER = "user_email,user_name,authorization_name,password,domain,register_server,proxy_server,transport_protocol\n"


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "SIPPHONES_"))}
    env["SIPPHONES_DATA_DIR"] = str(tmp_path / "data")
    if request.param == "sqlite":
        yield env
        return
    url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_store_import")
    env["SIPPHONES_DATABASE_URL"] = url
    try:
        yield env
    finally:
        drop()


def account(env: dict) -> str:
    out = run(env, "accounts", "create", "--name", "Import", "--plan", "business", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["id"]


def stored_counts(env: dict, account_id: str) -> tuple[int, int]:
    """(accounts.phone_count, rows in sip_phones) of the account, read from the store itself."""
    import sqlalchemy as sa

    from sipphones.config import load_settings
    from sipphones.storage.database import sync_engine

    url = load_settings(database_url=env.get("SIPPHONES_DATABASE_URL"),
                        data_dir=env["SIPPHONES_DATA_DIR"]).resolved_database_url()
    engine = sync_engine(url)
    try:
        with engine.connect() as c:
            count = c.execute(sa.text("SELECT phone_count FROM accounts WHERE id = :a"), {"a": account_id}).scalar()
            rows = c.execute(sa.text("SELECT count(*) FROM sip_phones WHERE account_id = :a"),
                             {"a": account_id}).scalar()
    finally:
        engine.dispose()
    return count, rows


def test_an_import_into_the_store_creates_then_changes_nothing(store_env, tmp_path):
    acc = account(store_env)
    csv = tmp_path / "phones.csv"
    csv.write_text(HEADER + "".join(f"user{n}@example.com,10{n},auth{n},pw{n},sip.example.com,10.0.0.1,10.0.0.1,UDP\n"
                                    for n in range(25)))
    first = run(store_env, "phones", "import", str(csv), "--store", "--account-id", acc, "--create-users", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["created"], summary["users_created"], summary["failed"]) == (25, 25, 0)
    again = run(store_env, "phones", "import", str(csv), "--store", "--account-id", acc, "--json")
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["created"], json.loads(again.stdout)["unchanged"]) == (0, 25)
    assert stored_counts(store_env, acc) == (25, 25)


def test_a_bad_line_writes_nothing_and_names_line_and_column(store_env, tmp_path):
    acc = account(store_env)
    csv = tmp_path / "phones.csv"
    csv.write_text(HEADER + "a@example.com,1001,a,pw,sip.example.com,10.0.0.1,10.0.0.1,UDP\n"
                            "b@example.com,1002,b,pw,sip.example.com,10.0.0.999,10.0.0.1,UDP\n")
    out = run(store_env, "phones", "import", str(csv), "--store", "--account-id", acc, "--create-users")
    assert out.returncode == 2, out.stderr
    assert "line 3, column register_server:" in out.stderr and "nothing was written" in out.stderr
    again = run(store_env, "phones", "import", str(csv.with_name("none.csv")), "--store", "--account-id", acc)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert stored_counts(store_env, acc) == (0, 0)


def test_the_account_is_required_and_must_exist(store_env, tmp_path):
    account(store_env)  # the store exists
    csv = tmp_path / "phones.csv"
    csv.write_text(HEADER)
    missing = run(store_env, "phones", "import", str(csv), "--store")
    assert missing.returncode == 1 and "--store needs the account" in missing.stderr
    unknown = run(store_env, "phones", "import", str(csv), "--store", "--account-id", "NoSuchAccount000000000")
    assert unknown.returncode == 1 and "no account with id NoSuchAccount000000000" in unknown.stderr
    assert "Traceback" not in unknown.stderr
