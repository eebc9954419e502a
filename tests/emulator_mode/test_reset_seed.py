"""Reset and seed over HTTP, on SQLite and PostgreSQL: the seed is there at start, reset brings it
back (everything or one account), seeded credentials work, ids come from the seed number."""

from __future__ import annotations

import httpx

from sipphones.emulator.seed import Seed
from tests.emulator_mode.conftest import ACME, PHONE, SEED, acme_headers


def _phones(base_url: str, headers: dict) -> list[dict]:
    r = httpx.get(f"{base_url}/v2/sip_phones", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["phones"]


def test_the_seed_is_there_and_its_app_gets_tokens(emu, control):
    phones = _phones(emu.url, acme_headers(emu.url))
    assert [(p["user_email"], p["password"], p["voice_mail"]) for p in phones] == [
        ("alice@example.com", "alice-sip-secret", "4000")]
    snapshot = control.snapshot()
    accounts = {a["name"]: a for a in snapshot["tables"]["accounts"]}
    assert accounts["Acme"]["plan"] == "business" and accounts["Globex"]["plan"] == "free"
    assert accounts["Globex"]["sip_phone_integration"] in (False, 0)


def test_reset_returns_everything_to_the_seed(emu, control):
    headers = acme_headers(emu.url)
    r = httpx.post(f"{emu.url}/v2/sip_phones", headers=headers, json={"user_email": "bob@example.com", **PHONE})
    assert r.status_code == 201, r.text
    alice = _phones(emu.url, headers)[0]
    r = httpx.delete(f"{emu.url}/v2/sip_phones/{alice['id']}", headers=headers)
    assert r.status_code == 204
    fresh = control.fresh_account()
    assert [p["user_email"] for p in _phones(emu.url, headers)] == ["bob@example.com"]

    assert control.reset() == {"reset": "all", "account_id": None}

    after = _phones(emu.url, headers)  # the seeded app's token still works: its app is back
    assert after == [alice]
    gone = httpx.get(f"{emu.url}/v2/sip_phones", headers={"Authorization": f"Bearer {fresh.access_token}"})
    assert gone.status_code == 401 and gone.json()["code"] == 124


def test_reset_of_one_account_leaves_the_others(emu, control):
    headers = acme_headers(emu.url)
    one, two = control.fresh_account(users=["dave@example.com"]), control.fresh_account(users=["erin@example.com"])
    for account, email in ((one, "dave@example.com"), (two, "erin@example.com")):
        r = httpx.post(f"{emu.url}/v2/sip_phones", headers=account.headers, json={"user_email": email, **PHONE})
        assert r.status_code == 201, r.text
    httpx.post(f"{emu.url}/v2/sip_phones", headers=headers, json={"user_email": "bob@example.com", **PHONE})

    control.reset(ACME)   # Acme: back to its seed (one phone); the fresh accounts untouched
    assert [p["user_email"] for p in _phones(emu.url, headers)] == ["alice@example.com"]
    assert len(_phones(emu.url, one.headers)) == 1 and len(_phones(emu.url, two.headers)) == 1

    control.reset(one.account_id)  # a fresh account is not in the seed: it is gone
    assert httpx.get(f"{emu.url}/v2/sip_phones", headers=one.headers).status_code == 401
    assert len(_phones(emu.url, two.headers)) == 1


def test_seeded_ids_follow_the_seed_number(emu, control):
    """Every id the seed file leaves out comes from its seed number: the same on every run, on
    every store (the SQLite and the PostgreSQL emulator of this module agree, as does a second
    reading of the file); without a number they differ."""
    tables = control.snapshot()["tables"]
    ids = sorted(a["id"] for a in tables["accounts"]) + sorted(u["id"] for u in tables["users"]) + \
        sorted(p["id"] for p in tables["sip_phones"]) + sorted(a["client_id"] for a in tables["apps"])
    assert ACME in ids and "acmeClientId00000001" in ids
    assert ids == EXPECTED_IDS


def _expected_ids() -> list[str]:
    import random

    from sipphones.emulator.seed import SEED_EPOCH_MS, _Ids
    from sipphones.ids import new_id

    rng = random.Random(7)
    # In file order: Acme's two users and its phone, then Globex, its user and its app's client id.
    made = [new_id(SEED_EPOCH_MS + n, rng.randbytes(11)) for n in range(1, 6)]
    client = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))
    alice, bob, phone, globex, carol = made
    assert _Ids(7).id() == alice
    return sorted([ACME, globex]) + sorted([alice, bob, carol]) + [phone] + sorted(["acmeClientId00000001", client])


EXPECTED_IDS = _expected_ids()


def test_a_seed_without_a_number_gets_random_ids():
    seed = Seed.parse("accounts: [{name: A}]")
    assert seed.number is None
    from sipphones.emulator.seed import _Ids

    assert _Ids(None).id() != _Ids(None).id()
    assert _Ids(3).id() == _Ids(3).id()
    assert Seed.load(SEED).number == 7
