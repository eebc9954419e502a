"""What the database holds: never a SIP password in clear, app secrets only as hashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.api.zoom import current_body, current_phones, legacy_body, legacy_phones, legacy_update_body

UNICODE_PASSWORD = "pä$$wörd — 密码 🔑 \"quoted\" 'single' \\back\\slash\\ and spaces  "


def _engine(database_url: str) -> sa.Engine:
    url = make_url(database_url)
    if url.get_backend_name().startswith("postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(url)


def dump_database(database_url: str) -> bytes:
    """Every value of every row of every table, as bytes (text UTF-8 encoded, binary as is)."""
    engine = _engine(database_url)
    chunks: list[bytes] = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        if isinstance(value, (bytes, bytearray, memoryview)):
                            chunks.append(bytes(value))
                        elif value is not None:
                            chunks.append(str(value).encode())
    finally:
        engine.dispose()
    return b"\x00".join(chunks)


def sqlite_file_bytes(database_url: str) -> bytes:
    path = Path(make_url(database_url).database)
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def assert_absent(secret: str, database_url: str) -> None:
    needles = {secret.encode(), secret.encode("utf-16-le"), secret.encode().hex().encode()}
    haystacks = [dump_database(database_url)]
    if make_url(database_url).get_backend_name() == "sqlite":
        haystacks.append(sqlite_file_bytes(database_url))
    for hay in haystacks:
        for needle in needles:
            assert needle not in hay, f"{secret!r} found in the database"


def test_sip_passwords_are_never_stored_in_clear(api, database_url):
    passwords = ["Legacy-Clear-Text-Password-4711", "Current-Clear-Text-Password-0815", UNICODE_PASSWORD.strip()]
    a = api.post("/v2/sip_phones", json=legacy_body(password=passwords[0])).json()
    b = api.post("/v2/sip_phones/phones", json=current_body("alice@example.com.pc", password=passwords[1])).json()
    assert a["password"] == passwords[0] and b["password"] == passwords[1]
    # A changed password: neither the old nor the new one may be stored in clear.
    assert api.patch(f"/v2/sip_phones/{a['id']}", json=legacy_update_body(password=passwords[2])).status_code == 204
    assert legacy_phones(api)[a["id"]]["password"] == passwords[2]
    for pw in passwords:
        assert_absent(pw, database_url)
    # The rows are there (the check above looked at real data).
    dump = dump_database(database_url)
    assert a["id"].encode() in dump and b"alice@example.com.pc" in dump


def test_same_password_twice_gives_different_ciphertexts(api, database_url):
    pw = "Same-Password-For-Two-Phones"
    ids = [api.post("/v2/sip_phones", json=legacy_body(e, password=pw)).json()["id"]
           for e in ("alice@example.com", "alice@example.com.mac")]
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, password_enc FROM sip_phones WHERE id IN (:a, :b)"),
                                {"a": ids[0], "b": ids[1]}).all()
    finally:
        engine.dispose()
    blobs = [bytes(r.password_enc) for r in rows]
    assert len(blobs) == 2 and blobs[0] != blobs[1]
    assert all(pw.encode() not in blob for blob in blobs)


def test_password_round_trips_exactly(api):
    cases = [UNICODE_PASSWORD, "x", "😀" * 255, " leading and trailing ", "ÅÄÖ\u00a0nbsp\u2028sep"]
    for i, pw in enumerate(cases):
        email = "alice@example.com" + ("", ".win", ".mac", ".pc", ".pad")[i]
        r = api.post("/v2/sip_phones", json=legacy_body(email, password=pw))
        assert r.status_code == 201, (pw, r.text)
        pid = r.json()["id"]
        assert r.json()["password"] == pw
        assert legacy_phones(api)[pid]["password"] == pw
        assert current_phones(api)[pid]["password"] == pw
        again = pw[::-1]
        assert api.patch(f"/v2/sip_phones/phones/{pid}", json={"password": again}).status_code == 204
        assert legacy_phones(api)[pid]["password"] == again


def test_app_secrets_are_stored_only_as_hashes(creds, database_url, api):
    dump = dump_database(database_url)
    assert creds.client_id.encode() in dump
    assert creds.client_secret.encode() not in dump
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT secret_hash FROM apps WHERE client_id = :c"),
                                  {"c": creds.client_id}).scalar_one()
    finally:
        engine.dispose()
    scheme, salt, digest = stored.split("$")
    assert scheme == "sha256" and salt and digest
    assert creds.client_secret not in stored


def test_access_tokens_are_not_stored(api, database_url):
    token = api.headers["Authorization"].split()[1]
    assert token.encode() not in dump_database(database_url)


def test_master_key_is_generated_private_in_the_data_directory(server):
    key = server.data_dir / "secret.key"
    assert key.exists()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    import base64

    assert len(base64.b64decode(key.read_text().strip())) == 32


def test_lists_come_in_byte_order_of_ids(api, database_url):
    """Keyset pages walk ``ORDER BY id``; ids start with the creation time in an ASCII-ordered
    alphabet, so byte order is creation order. On PostgreSQL the id columns use the "C" collation
    (whatever the database locale), else 'a' < 'Z' and the order would break."""
    made = [api.post("/v2/sip_phones", json=legacy_body(e)).json()["id"]
            for e in ["alice@example.com", *(f"alice@example.com{s}" for s in (".win", ".mac", ".pc", ".pad"))]]
    listed = list(legacy_phones(api, page_size=2))
    assert listed == sorted(made)
    if make_url(database_url).get_backend_name() == "postgresql":
        engine = _engine(database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name IN ('id', 'user_id', 'phone_id') "
                    "AND table_name IN ('users', 'sip_phones', 'phone_status')")).all()
        finally:
            engine.dispose()
        assert {(t, c): coll for t, c, coll in rows} == {
            ("users", "id"): "C", ("sip_phones", "id"): "C", ("sip_phones", "user_id"): "C",
            ("phone_status", "phone_id"): "C"}
