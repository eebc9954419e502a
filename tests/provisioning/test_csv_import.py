"""``sipphones phones import`` / ``export`` (CSV) as processes against a real ``sipphones serve``
(SQLite), through the client: validation before anything is written, dry runs, users, rate
limits, a killed import, and export -> edit -> import."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

from sipphones.accounts.models import Plan
from sipphones.client import SipPhonesClient
from sipphones.provisioning.csvfile import COLUMNS
from tests.cli_phones.test_phones_cli import sipphones, zoom_env
from tests.servers import Credentials

HEADER = list(COLUMNS)


def row(email: str, **changes) -> dict:
    r = {"user_email": email, "user_name": "1001", "authorization_name": "alice", "password": "pw-" + email,
         "domain": "sip.example.com", "register_server": "10.0.0.1:5060", "proxy_server": "10.0.0.1:5060",
         "transport_protocol": "UDP", "register_server2": "10.0.0.2", "proxy_server2": "", "transport_protocol2": "TCP",
         "register_server3": "", "proxy_server3": "", "transport_protocol3": "", "registration_expire_time": "30",
         "voice_mail": "4000", "display_number": "+15550100"}
    r.update(changes)
    return r


def write_csv(path, rows, *, header=HEADER, delimiter=",", bom=False) -> str:
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c.strip().lower(), "") for c in header])
    return str(path)


def read_csv(path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def phones(creds: Credentials, base_url: str) -> dict[str, dict]:
    with SipPhonesClient(creds.account_id, creds.client_id, creds.client_secret, base_url=base_url) as zoom:
        return {p["user_email"]: dict(p) for p in zoom.iter_phones()}


def import_json(env, path, *args):
    r = sipphones(env, "phones", "import", path, "--json", *args)
    return r, (json.loads(r.out) if r.out.strip() else None)


def test_one_bad_line_writes_nothing_then_the_fixed_file_imports(account, base_url, tmp_path):
    env = zoom_env(account, base_url)
    rows = [row("alice@example.com"), row("bob@example.com", register_server="10.0.0.999", user_name=""),
            row("alice@example.com.pc", registration_expire_time="200")]
    path = write_csv(tmp_path / "phones.csv", rows)
    r = sipphones(env, "phones", "import", path)
    assert r.code == 2, r.err
    assert "line 3, column user_name: Must not be empty." in r.err
    assert "line 3, column register_server: Invalid server address: '10.0.0.999' is not a valid IPv4 address" in r.err
    assert "line 4, column registration_expire_time: Must be from 1 to 127 (minutes)." in r.err
    assert "error: 2 invalid lines: nothing was written" in r.err and "Traceback" not in r.err
    assert phones(account, base_url) == {}

    r, out = import_json(env, path)
    assert r.code == 2 and out["created"] == 0 and out["failed"] == 2
    assert {"line": 3, "column": "register_server",
            "message": "Invalid server address: '10.0.0.999' is not a valid IPv4 address. Use an IPv4 address, a "
                       "bracketed IPv6 address or a DNS name, with an optional :port."} in out["errors"]

    rows[1].update(register_server="10.0.0.9", user_name="1002")
    rows[2].update(registration_expire_time="120")
    write_csv(path, rows)
    r = sipphones(env, "phones", "import", path)
    assert r.code == 0, r.err
    assert "created 3, updated 0, unchanged 0, failed 0" in r.out
    stored = phones(account, base_url)
    assert set(stored) == {"alice@example.com", "bob@example.com", "alice@example.com.pc"}
    bob = stored["bob@example.com"]
    assert bob["server"] == {"register_server": "10.0.0.9", "proxy_server": "10.0.0.1:5060", "transport_protocol": "UDP"}
    assert bob["server_2"] == {"register_server": "10.0.0.2", "proxy_server": "", "transport_protocol": "TCP"}
    assert "server_3" not in bob and bob["password"] == "pw-bob@example.com" and bob["display_number"] == "+15550100"
    assert stored["alice@example.com.pc"]["registration_expire_time"] == 120


def test_bom_semicolons_free_column_order_and_legacy_suffix(account, base_url, tmp_path):
    env = zoom_env(account, base_url)
    header = ["Display_Number", " user_email", "password", "user_name", "authorization_name", "domain",
              "register_server", "voice_mail"]
    rows = [row("alice@example.com", display_number="+33 1 23", voice_mail="Boîte vocale"),
            row("alice@example.com.mac", display_number="+15550199")]
    path = write_csv(tmp_path / "excel.csv", rows, header=header, delimiter=";", bom=True)
    r = sipphones(env, "phones", "import", path)
    assert r.code == 0, r.err
    stored = phones(account, base_url)
    assert stored["alice@example.com"]["voice_mail"] == "Boîte vocale"
    assert stored["alice@example.com"]["display_number"] == "+33 1 23"
    # .mac is a legacy-only suffix: created on the legacy set, its display number set after
    assert stored["alice@example.com.mac"]["display_number"] == "+15550199"
    assert stored["alice@example.com.mac"]["registration_expire_time"] == 60  # column left out: the default
    assert "nothing to change" in sipphones(env, "phones", "import", path).out


def test_unknown_column_is_named(account, base_url, tmp_path):
    env = zoom_env(account, base_url)
    path = write_csv(tmp_path / "p.csv", [row("alice@example.com")], header=HEADER + ["colour"])
    r = sipphones(env, "phones", "import", path)
    assert r.code == 2
    assert "line 1, column colour: unknown column 'colour' in the header row" in r.err
    r = sipphones(env, "phones", "import", write_csv(tmp_path / "noheader.csv", [], header=list(row("a@b.co").values())))
    assert r.code == 2 and "unknown column 'a@b.co'" in r.err and "a header row is required" in r.err
    assert phones(account, base_url) == {}


def test_dry_run_and_json(account, base_url, tmp_path):
    env = zoom_env(account, base_url)
    path = write_csv(tmp_path / "p.csv", [row("alice@example.com"), row("bob@example.com")])
    assert sipphones(env, "phones", "import", path).code == 0
    before = phones(account, base_url)
    rows = [row("alice@example.com"), row("bob@example.com", voice_mail="5000", password=""),
            row("alice@example.com.pc")]
    write_csv(path, rows)
    r = sipphones(env, "phones", "import", path, "--dry-run")
    assert r.code == 0, r.err
    bob_id = before["bob@example.com"]["phone_id"]
    assert f"line 3: would update bob@example.com ({bob_id})" in r.out
    assert "line 4: would create alice@example.com.pc" in r.out and "alice@example.com\n" not in r.out
    assert "dry run: would create 1, update 1, leave 1 unchanged; nothing was written" in r.out
    r, out = import_json(env, path, "--dry-run")
    assert (out["created"], out["updated"], out["unchanged"], out["failed"], out["errors"]) == (1, 1, 1, 0, [])
    assert out["dry_run"] is True
    assert phones(account, base_url) == before

    r, out = import_json(env, path)
    assert r.code == 0, r.err
    assert {k: out[k] for k in ("created", "updated", "unchanged", "failed", "errors")} == {
        "created": 1, "updated": 1, "unchanged": 1, "failed": 0, "errors": []}
    after = phones(account, base_url)
    assert after["bob@example.com"]["voice_mail"] == "5000"
    assert after["bob@example.com"]["password"] == "pw-bob@example.com"  # an empty password keeps it
    r, out = import_json(env, path)  # idempotent
    assert (out["created"], out["updated"], out["unchanged"]) == (0, 0, 3)
    r = sipphones(env, "phones", "import", path)
    assert r.code == 0 and r.out.strip() == "nothing to change: the 3 phones of the file are as it says"
    assert phones(account, base_url) == after


def test_create_users_on_a_new_account(api_admin, base_url, tmp_path):
    creds = api_admin.account(users=())
    env = zoom_env(creds, base_url)
    rows = [row("carol@new.test"), row("carol@new.test.pc"), row("dave@new.test.mobile")]
    path = write_csv(tmp_path / "p.csv", rows)
    r = sipphones(env, "phones", "import", path)
    assert r.code == 2
    assert ("line 2, column user_email: User carol@new.test not exist or not belong to this account. "
            "(--create-users creates it)") in r.err
    r, out = import_json(env, path, "--create-users", "--dry-run")
    assert out["users_created"] == 2 and out["created"] == 3
    r, out = import_json(env, path, "--create-users")
    assert r.code == 0, r.err
    assert out["users_created"] == 2 and out["created"] == 3
    assert set(phones(creds, base_url)) == {"carol@new.test", "carol@new.test.pc", "dave@new.test.mobile"}
    with SipPhonesClient(creds.account_id, creds.client_id, creds.client_secret, base_url=base_url) as zoom:
        assert sorted(u["email"] for u in zoom.iter_users()) == ["carol@new.test", "dave@new.test"]
    r, out = import_json(env, path, "--create-users")
    assert (out["users_created"], out["created"], out["unchanged"]) == (0, 0, 3)


def test_free_plan_rate_limit_is_waited_out(free_account, base_url, tmp_path):
    env = zoom_env(free_account, base_url)
    emails = ["alice@example.com"] + [f"alice@example.com{s}" for s in
                                      (".win", ".mac", ".android", ".ipad", ".iphone", ".linux", ".pc", ".mobile", ".pad")]
    rows = [row(e, user_name=str(1000 + i)) for i, e in enumerate(emails)]
    path = write_csv(tmp_path / "p.csv", rows)
    r, out = import_json(env, path)
    assert r.code == 0, r.err
    assert out["created"] == len(emails) and out["failed"] == 0
    assert out["rate_limit_waits"] > 0  # 4 creates a second: some 429 was waited out
    assert sorted(phones(free_account, base_url)) == sorted(emails)


def test_twelve_rows_into_a_free_account(api_admin, base_url, tmp_path):
    users = tuple(f"u{i}@example.com" for i in range(12))
    creds = api_admin.account(plan=Plan.FREE, unlimited=False, users=users)
    env = zoom_env(creds, base_url)
    path = write_csv(tmp_path / "p.csv", [row(u) for u in users])
    r, out = import_json(env, path)
    assert r.code == 0, r.err
    assert (out["created"], out["failed"]) == (12, 0) and out["rate_limit_waits"] > 0
    assert sorted(phones(creds, base_url)) == sorted(users)


def test_killed_import_run_again_completes_without_duplicates(api_admin, base_url, tmp_path):
    users = tuple(f"k{i}@example.com" for i in range(40))
    creds = api_admin.account(plan=Plan.FREE, unlimited=False, users=users)
    env = zoom_env(creds, base_url)
    path = write_csv(tmp_path / "p.csv", [row(u, user_name=str(2000 + i)) for i, u in enumerate(users)])
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "SIPPHONES_"))}
    proc = subprocess.Popen([sys.executable, "-m", "sipphones", "phones", "import", path],
                            env={**base, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(phones(creds, base_url)) < 6:
            time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = phones(creds, base_url)
    assert 6 <= len(partial) < 40  # killed half-way (4 creates a second on the free plan)
    r, out = import_json(env, path)
    assert r.code == 0, r.err
    assert out["created"] == 40 - len(partial) and out["unchanged"] == len(partial) and out["failed"] == 0
    with SipPhonesClient(creds.account_id, creds.client_id, creds.client_secret, base_url=base_url) as zoom:
        listed = [p["user_email"] for p in zoom.iter_phones()]
    assert sorted(listed) == sorted(users)  # each exactly once
    stored = phones(creds, base_url)
    assert all(stored[u]["user_name"] == str(2000 + i) and stored[u]["password"] == "pw-" + u
               for i, u in enumerate(users))


def test_export_edit_import_round_trip(account, base_url, tmp_path):
    env = zoom_env(account, base_url)
    src = write_csv(tmp_path / "src.csv", [row("alice@example.com"), row("bob@example.com", register_server3="sip3.example.com",
                                                                         transport_protocol3="TLS")])
    assert sipphones(env, "phones", "import", src).code == 0
    before = phones(account, base_url)
    out = tmp_path / "export.csv"
    r = sipphones(env, "phones", "export", str(out))
    assert r.code == 0, r.err
    assert os.stat(out).st_mode & 0o777 == 0o600
    exported = read_csv(out)
    assert list(exported[0]) == ["phone_id", *COLUMNS]
    assert [(x["phone_id"], x["user_email"], x["password"]) for x in exported] == [
        (before["alice@example.com"]["phone_id"], "alice@example.com", ""),
        (before["bob@example.com"]["phone_id"], "bob@example.com", "")]
    assert exported[1]["register_server3"] == "sip3.example.com" and exported[1]["transport_protocol3"] == "TLS"
    assert exported[0]["register_server3"] == exported[0]["transport_protocol3"] == ""

    r, res = import_json(env, str(out))  # unedited: nothing to do
    assert (res["created"], res["updated"], res["unchanged"]) == (0, 0, 2)

    exported[0]["voice_mail"] = "7000"
    exported[1].update(register_server2="", proxy_server2="", transport_protocol2="", display_number="")
    write_csv(out, exported, header=list(exported[0]))
    r, res = import_json(env, str(out))
    assert r.code == 0, r.err
    assert (res["created"], res["updated"], res["unchanged"]) == (0, 2, 0)
    after = phones(account, base_url)
    assert after["alice@example.com"] == {**before["alice@example.com"], "voice_mail": "7000"}
    bob = {**before["bob@example.com"], "display_number": ""}
    del bob["server_2"]  # an emptied register_server2 removes the set
    assert after["bob@example.com"] == bob  # passwords kept

    r = sipphones(env, "phones", "export", "--include-passwords", "--delimiter", ";")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("phone_id;user_email;user_name;authorization_name;password;")
    assert "pw-alice@example.com" in r.out and "pw-bob@example.com" in r.out
    assert "pw-alice" not in sipphones(env, "phones", "export").out


def test_progress_bar_on_a_terminal(account, base_url, tmp_path):
    """On a terminal the import shows a rich progress bar with its rate (stderr)."""
    import pty

    env = zoom_env(account, base_url)
    path = write_csv(tmp_path / "p.csv", [row("alice@example.com"), row("bob@example.com")])
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "SIPPHONES_"))}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sipphones", "phones", "import", path],
                            env={**base, **env, "COLUMNS": "160", "TERM": "xterm"}, stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.returncode == 0, shown
    text = shown.decode(errors="replace")
    assert "importing" in text and "2/2" in text and "rows/s" in text
    assert b"created 2, updated 0, unchanged 0, failed 0" in out


def test_a_repeated_email_and_a_short_row_are_errors(account, base_url, tmp_path):
    env = zoom_env(account, base_url)
    path = write_csv(tmp_path / "p.csv", [row("alice@example.com"), row("ALICE@example.com", user_name="1002")])
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write("bob@example.com,1003\r\n")
    r, out = import_json(env, path)
    assert r.code == 2
    assert out["errors"] == [
        {"line": 3, "column": "user_email", "message": "The same user_email as an earlier line: each address is one phone."},
        {"line": 4, "column": "", "message": f"2 cells, but the header row names {len(COLUMNS)} columns"}]
    assert phones(account, base_url) == {}
