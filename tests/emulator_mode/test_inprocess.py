"""The in-process mode: the app behind httpx.ASGITransport, the control plane as Python calls."""

from __future__ import annotations

from tests.emulator_mode.conftest import ACME, ACME_CLIENT, PHONE, SEED

from sipphones.testing import InProcessEmulator


async def test_in_process_emulator(tmp_path):
    async with InProcessEmulator(seed=SEED, data_dir=tmp_path) as zoom:
        async with zoom.client() as http:
            r = await http.post("/oauth/token", params={"grant_type": "account_credentials", "account_id": ACME},
                                auth=ACME_CLIENT)
            assert r.status_code == 200
            seeded = r.json()["access_token"]
        account = await zoom.fresh_account(users=["zed@example.com"], plan="business")
        async with zoom.client(account["access_token"]) as http:
            r = await http.post("/v2/sip_phones", json={"user_email": "zed@example.com", **PHONE})
            assert r.status_code == 201, r.text
            assert len((await http.get("/v2/sip_phones")).json()["phones"]) == 1
            zoom.clock.advance(3600)
            r = await http.get("/v2/sip_phones")
            assert r.status_code == 401 and r.json()["message"] == "Access token is expired."
        snapshot = await zoom.snapshot()
        assert len(snapshot["tables"]["sip_phones"]) == 2
        await zoom.reset()
        assert zoom.clock.offset == 0
        after = await zoom.snapshot()
        assert {a["id"] for a in after["tables"]["accounts"]} == {a["id"] for a in snapshot["tables"]["accounts"]} - {
            account["account_id"]}
        async with zoom.client(seeded) as http:
            assert len((await http.get("/v2/sip_phones")).json()["phones"]) == 1
        await zoom.load_snapshot(snapshot)
        assert len((await zoom.snapshot())["tables"]["sip_phones"]) == 2
        assert zoom.journal is zoom.emulator.journal and zoom.faults is zoom.emulator.faults
