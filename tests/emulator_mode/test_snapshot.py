"""Snapshot export and import: the whole state as JSON, loadable into another instance (another
master key: phone passwords travel in clear and are encrypted again)."""

from __future__ import annotations

import httpx
import pytest

from sipphones.testing import ControlError, EmulatorServer
from tests.emulator_mode.conftest import ACME, PHONE, acme_headers


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """A second emulator with no seed, its own store and its own master key."""
    server = EmulatorServer(data_dir=tmp_path_factory.mktemp("other")).start()
    yield server
    server.stop()


def test_a_snapshot_loads_into_another_instance(emu, control, other):
    headers = acme_headers(emu.url)
    r = httpx.post(f"{emu.url}/v2/sip_phones", headers=headers, json={"user_email": "bob@example.com", **PHONE})
    assert r.status_code == 201
    phones = httpx.get(f"{emu.url}/v2/sip_phones", headers=headers).json()["phones"]
    snapshot = control.snapshot()
    assert snapshot["format"] == "sipphones-snapshot" and snapshot["version"] == 1
    assert all("password_enc" not in p for p in snapshot["tables"]["sip_phones"])

    loaded = other.control.load_snapshot(snapshot)
    assert loaded["loaded"] == sum(len(rows) for rows in snapshot["tables"].values())
    assert httpx.get(f"{other.url}/v2/sip_phones", headers=acme_headers(other.url)).json()["phones"] == phones
    assert other.control.snapshot()["tables"] == snapshot["tables"]

    other.control.reset()  # without baseline=True, reset returns to the (empty) start
    assert other.control.snapshot()["tables"]["accounts"] == []


def test_a_snapshot_as_baseline_is_what_reset_returns_to(emu, control, other):
    snapshot = control.snapshot()
    other.control.load_snapshot(snapshot, baseline=True)
    fresh = other.control.fresh_account()
    other.control.reset()
    tables = other.control.snapshot()["tables"]
    assert {a["id"] for a in tables["accounts"]} == {a["id"] for a in snapshot["tables"]["accounts"]}
    assert fresh.account_id not in {a["id"] for a in tables["accounts"]}
    assert ACME in {a["id"] for a in tables["accounts"]}
    other.control.load_snapshot({"format": "sipphones-snapshot", "version": 1, "tables": {}}, baseline=True)


@pytest.mark.parametrize("bad, words", [
    ({"format": "sipphones-snapshot", "version": 99, "tables": {}}, "version"),
    ({"format": "sipphones-snapshot", "version": 1, "tables": {"secrets": []}}, "unknown table"),
    ({"format": "sipphones-snapshot", "version": 1, "tables": {"accounts": [{"id": "x", "evil": 1}]}}, "no column"),
    ({"format": "sipphones-snapshot", "version": 1, "tables": {"accounts": [{"id": "x"}]}}, "snapshot"),
    ({"format": "sipphones-snapshot", "version": 1, "tables": {"accounts": "nope"}}, "list"),
])
def test_a_bad_snapshot_is_refused_and_changes_nothing(emu, control, bad, words):
    before = control.snapshot()["tables"]
    with pytest.raises(ControlError) as info:
        control.load_snapshot(bad)
    assert info.value.status == 400 and words in str(info.value)
    assert control.snapshot()["tables"] == before
