"""PostgreSQL restarted under a load of creates (a cluster of the test's own: the machine's shared
PostgreSQL is never stopped): requests in the outage get Zoom's error body with a 503 in bounded
time (never a traceback, never a hang past the client's timeout), the service recovers by itself
once the database is back, and every create answered 201 is in the store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.api.zoom import legacy_body
from tests.multi.conftest import admin_for, instance_env, new_secret_key, start_instances
from tests.multi.own_postgres import OwnPostgres
from tests.pg import fresh_postgres_database
from tests.servers import get_token

pytestmark = pytest.mark.postgres

CLIENT_TIMEOUT = 10.0   # seconds each request gets from the client
OUTAGE = 3.0            # seconds the database stays down
LOADERS = 4
UNAVAILABLE = {"code": 503, "message": "Service Unavailable: the database does not answer. Try again later."}


@pytest.fixture
def own_postgres():
    cluster = OwnPostgres.create()
    yield cluster
    cluster.destroy()


@dataclass
class Answer:
    email: str
    status: int | str        # the HTTP status, or "timeout" / the transport error's name
    body: dict | str
    headers: dict
    seconds: float
    at: float                # time.monotonic() when it came


def create_load(client: httpx.Client, emails: list[str], stop: threading.Event, out: list[Answer]) -> None:
    for email in emails:
        if stop.is_set():
            return
        start = time.monotonic()
        try:
            r = client.post("/v2/sip_phones", json=legacy_body(email), timeout=CLIENT_TIMEOUT)
        except httpx.TimeoutException:
            out.append(Answer(email, "timeout", "", {}, time.monotonic() - start, time.monotonic()))
            continue
        except httpx.TransportError as e:
            out.append(Answer(email, type(e).__name__, str(e), {}, time.monotonic() - start, time.monotonic()))
            continue
        try:
            body = r.json()
        except ValueError:
            body = r.text
        out.append(Answer(email, r.status_code, body, dict(r.headers), time.monotonic() - start, time.monotonic()))


def stored_phones(url: str, account_id: str) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT id, user_email FROM sip_phones WHERE account_id = %s", (account_id,)).fetchall()
    return {r[0]: r[1] for r in rows}


def test_a_postgres_restart_under_creates_loses_no_acknowledged_create(own_postgres, tmp_path):
    url, _drop = fresh_postgres_database(own_postgres.url, "restart")
    key = new_secret_key()
    (srv,) = start_instances(url, tmp_path, 1, instance_env(key))
    try:
        emails = [f"load{n}@example.com" for n in range(3000)]
        creds = admin_for(url, tmp_path / "admin", key).account(users=tuple(emails))
        answers: list[Answer] = []
        stop = threading.Event()
        with srv.client() as c:
            c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
            loaders = [threading.Thread(target=create_load, args=(c, emails[n::LOADERS], stop, answers))
                       for n in range(LOADERS)]
            for t in loaders:
                t.start()
            time.sleep(1.5)  # creates flowing
            own_postgres.stop("fast")
            down_at = time.monotonic()
            # While it is down: each kind of request answers 503 in Zoom's shape, in bounded time.
            for method, path in (("GET", "/v2/sip_phones"), ("GET", "/v2/sip_phones/phones"),
                                 ("POST", "/v2/sip_phones")):
                start = time.monotonic()
                r = c.request(method, path, json=legacy_body("nobody@example.com") if method == "POST" else None,
                              timeout=CLIENT_TIMEOUT)
                assert r.status_code == 503, r.text
                assert r.json() == UNAVAILABLE and r.headers["retry-after"] == "1"
                assert time.monotonic() - start < CLIENT_TIMEOUT
            # The token endpoint (the SQLAlchemy path) too.
            r = c.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                       data={"grant_type": "account_credentials", "account_id": creds.account_id},
                       timeout=CLIENT_TIMEOUT)
            assert r.status_code == 503 and r.json() == UNAVAILABLE, r.text
            assert c.get("/healthz").status_code == 503
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
            own_postgres.start()
            up_at = time.monotonic()
            # Recovered by itself: creates are answered 201 again, soon.
            deadline = up_at + 20
            while not any(a.status == 201 and a.at > up_at for a in list(answers)):
                assert time.monotonic() < deadline, "creates did not succeed again after PostgreSQL came back"
                time.sleep(0.1)
            recovered = min(a.at for a in list(answers) if a.status == 201 and a.at > up_at) - up_at
            time.sleep(1.0)  # more creates after the recovery
            stop.set()
            for t in loaders:
                t.join(CLIENT_TIMEOUT * 2)
            assert c.get("/healthz").status_code == 200

        statuses = {}
        for a in answers:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        print(f"answers: {statuses}; first 201 {recovered:.2f} s after PostgreSQL accepted connections again; "
              f"slowest answer {max(a.seconds for a in answers):.2f} s")
        assert set(statuses) <= {201, 503}, statuses  # no 500, no timeout, no dropped connection
        assert statuses.get(503, 0) >= 1 and statuses.get(201, 0) >= 20
        for a in answers:
            if a.status == 503:
                assert a.body == UNAVAILABLE, a.body
        acknowledged = {a.body["id"]: a.email for a in answers if a.status == 201}
        stored = stored_phones(url, creds.account_id)
        lost = {pid: email for pid, email in acknowledged.items() if stored.get(pid) != email}
        assert not lost, f"{len(lost)} acknowledged create(s) are not in the store"
        log = srv.log()
        assert "Traceback" not in log, log[-3000:]
        assert "the database does not answer" in log  # the operator is told, in a line or a few
        assert log.count("the database does not answer") <= 10
    finally:
        srv.stop()


async def test_the_hot_path_on_a_database_that_is_down_fails_fast_and_comes_back(own_postgres):
    """A worker whose first requests meet a database that is down (its pool not open yet): each
    concurrent request gets StoreUnavailable within about one pool wait (not one wait per request
    queued before it), and the first request after the database is back is served."""
    import asyncio

    from sipphones.repository import StoreUnavailable
    from sipphones.storage.outage import POOL_WAIT_S
    from sipphones.storage.raw.postgres import PostgresRunner

    runner = PostgresRunner(own_postgres.url)
    try:
        own_postgres.stop("fast")

        async def timed_read():
            start = time.monotonic()
            try:
                await runner.one("SELECT 1", ())
            except StoreUnavailable:
                return time.monotonic() - start
            raise AssertionError("a read succeeded on a stopped database")

        waits = await asyncio.gather(*(timed_read() for _ in range(10)))
        print(f"10 concurrent reads on a stopped database: slowest {max(waits):.2f} s")
        assert max(waits) < 2 * POOL_WAIT_S + 5  # queued one after another they would take ~10 x POOL_WAIT_S

        own_postgres.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert await runner.one("SELECT 1", ()) == (1,)
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the runner did not come back with the database"
                await asyncio.sleep(0.2)
    finally:
        await runner.close()
