"""Two ``sipphones serve`` instances (separate processes, own ports and data directories) on one
PostgreSQL and one Redis, driven at once: uniqueness holds across them, page and access tokens of
one work on the other, the rate limit is one limit for both, and counts stay exact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sipphones.accounts.models import Plan
from sipphones.ratelimit.policy import Label, limit_for
from tests.api.zoom import current_body, legacy_body
from tests.multi.conftest import START_TIMEOUT, admin_for, instance_env, new_secret_key, start_instances
from tests.multi.drive import assert_one_shared_limit, at_once, burst, clients
from tests.servers import get_token, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def legacy_total(client: httpx.Client) -> int:
    r = client.get("/v2/sip_phones", params={"page_size": 1})
    assert r.status_code == 200, r.text
    return r.json()["total_records"]


def test_the_same_email_created_on_both_at_once_is_stored_once(deployment):
    emails = [f"race{n}@example.com" for n in range(12)]
    creds = deployment.admin.account(users=tuple(emails))
    with clients(deployment.instances, creds) as (a, b):
        for email in emails:
            body = current_body(email)
            answers = at_once([lambda: a.post("/v2/sip_phones/phones", json=body),
                               lambda: b.post("/v2/sip_phones/phones", json=body)])
            statuses = sorted(r.status_code for r in answers)
            assert statuses == [201, 400], [r.text for r in answers]
            refused = next(r for r in answers if r.status_code == 400).json()
            assert refused == {"code": 300, "message": "SIP phone with the same email already exists."}
        for c in (a, b):
            assert legacy_total(c) == len(emails)


def test_tokens_of_one_instance_work_on_the_other(deployment):
    emails = [f"page{n}@example.com" for n in range(25)]
    creds = deployment.admin.account(users=tuple(emails))
    a, b = deployment.instances
    with a.client() as ca, b.client() as cb:
        token = get_token(ca, creds)  # issued by A
        for c in (ca, cb):
            c.headers["Authorization"] = f"Bearer {token}"
        for n, email in enumerate(emails):  # created on both, alternately
            r = (ca, cb)[n % 2].post("/v2/sip_phones", json=legacy_body(email))
            assert r.status_code == 201, r.text
        for path, key, id_key in (("/v2/sip_phones", "phones", "id"),
                                  ("/v2/sip_phones/phones", "phones", "phone_id")):
            seen, page_token, n = [], None, 0
            while True:  # the pages alternate between the instances: each follows the other's token
                params = {"page_size": 10, **({"next_page_token": page_token} if page_token else {})}
                r = (ca, cb)[n % 2].get(path, params=params)
                assert r.status_code == 200, r.text
                seen += [p[id_key] for p in r.json()[key]]
                page_token, n = r.json()["next_page_token"], n + 1
                if not page_token:
                    break
            assert n == 3 and len(seen) == len(set(seen)) == len(emails)


def test_the_rate_limit_is_one_limit_for_both(deployment):
    """A Pro account's Medium limit (list pages, per second): a burst of requests split between the
    instances inside one clock second is admitted exactly up to the one limit, each admitted request
    counted once (every X-RateLimit-Remaining value appears once)."""
    creds = deployment.admin.account(plan=Plan.PRO, unlimited=False)
    limit = limit_for(Label.MEDIUM, Plan.PRO).per_second
    with clients(deployment.instances, creds) as (a, b):
        answers = burst([a, b], limit)  # twice the limit in all: each instance alone would admit it whole
        assert_one_shared_limit(answers, limit)


def test_counts_stay_exact_under_creates_and_deletes_on_both(deployment):
    emails = [f"count{n}@example.com" for n in range(40)]
    creds = deployment.admin.account(users=tuple(emails))
    with clients(deployment.instances, creds) as (a, b):
        def create(n):
            r = (a, b)[n % 2].post("/v2/sip_phones", json=legacy_body(emails[n]))
            assert r.status_code == 201, r.text
            return r.json()["id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(create, range(len(emails))))
        doomed = ids[::3]

        def delete(n):  # each phone deleted on both instances at once: one 204, one 404
            phone_id = doomed[n]
            return sorted(r.status_code for r in at_once([lambda: a.delete(f"/v2/sip_phones/phones/{phone_id}"),
                                                          lambda: b.delete(f"/v2/sip_phones/phones/{phone_id}")]))

        for n in range(len(doomed)):
            assert delete(n) == [204, 404]
        expected = len(ids) - len(doomed)
        assert legacy_total(a) == legacy_total(b) == expected

        async def stored(svc, repo):
            return len([p async for p in repo.iter_phones(creds.account_id)])

        assert deployment.admin.run(stored) == expected


def test_instances_started_at_once_on_an_empty_database_migrate_once(empty_postgres, tmp_path):
    """A deployment rolling out starts its instances together: one migrates the empty database,
    the others wait for it (an advisory lock) instead of failing on tables it is creating."""
    key = new_secret_key()
    with ThreadPoolExecutor(3) as pool:
        starts = [pool.submit(start_server, empty_postgres, tmp_path / f"host{n}", extra_env=instance_env(key),
                              start_timeout=START_TIMEOUT) for n in range(3)]
        instances = [f.result() for f in starts]
    try:
        creds = admin_for(empty_postgres, tmp_path / "admin", key).account()
        for srv in instances:
            with srv.client() as c:
                c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
                assert c.get("/v2/sip_phones").status_code == 200
    finally:
        for srv in instances:
            srv.stop()


def test_an_instance_with_another_master_key_is_told_so(deployment, tmp_path):
    """An instance whose key cannot read the stored SIP passwords (a host that made its own
    secret.key) says so before it listens, in one plain sentence; the deployment's key is quiet."""
    creds = deployment.admin.account()
    with deployment.instances[0].client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
        assert c.post("/v2/sip_phones", json=legacy_body()).status_code == 201
    (stranger,) = start_instances(deployment.database_url, tmp_path / "stranger", 1, instance_env(new_secret_key()))
    stranger.stop()
    log = stranger.log()
    assert "warning: the master key does not decrypt the SIP passwords stored in this database" in log
    assert "SIPPHONES_SECRET_KEY" in log and "Traceback" not in log
    (same,) = start_instances(deployment.database_url, tmp_path / "third", 1, instance_env(deployment.secret_key))
    same.stop()
    assert "master key" not in same.log()
