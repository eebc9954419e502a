"""The admin console in a real headless Chromium (Playwright) against a real ``sipphones serve``,
with axe-core on every page and the check against the shared kamailio."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sipphones.cli.runtime import open_store
from sipphones.config import load_settings
from sipphones.repository import PhoneStatus
from tests.console.browser import assert_accessible, launch, shot
from tests.monitor.store import PhoneStore, Server
from tests.servers import Admin, start_server

pytestmark = pytest.mark.browser

READ_ONLY = ("sip_phone:read:admin", "user:read:admin")


def off_loop(fn, *args, **kwargs):
    """``fn`` run in another thread: Playwright's sync API keeps an event loop running in this one,
    and the store helpers run their own (``asyncio.run``)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


class OffLoop:
    """Every method of ``target`` called through ``off_loop``."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        return (lambda *a, **kw: off_loop(attr, *a, **kw)) if callable(attr) else attr


@pytest.fixture(scope="module")
def env(tmp_path_factory, sip_pki):
    store = PhoneStore(tmp_path_factory.mktemp("console"))
    server = start_server(store.database_url, store.data_dir,
                          extra_env={"SIPPHONES_SIP_CA_FILE": str(sip_pki.ca_file)})
    try:
        yield OffLoop(store), server, OffLoop(Admin(store.database_url, store.data_dir))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(accept_downloads=True)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


def sign_in(page, server, creds, secret: str | None = None) -> None:
    page.goto(server.base_url + "/")
    page.get_by_label("Account ID").fill(creds.account_id)
    page.get_by_label("Client ID").fill(creds.client_id)
    page.get_by_label("Client secret").fill(secret if secret is not None else creds.client_secret)
    page.get_by_role("button", name="Sign in").click()


def save_status(store, status: PhoneStatus) -> None:
    async def go():
        async with open_store(load_settings(database_url=store.database_url, data_dir=str(store.data_dir))) as repo:
            await repo.save_status(status)
    off_loop(asyncio.run, go())


def phone_count(store, account_id: str) -> int:
    async def go():
        async with open_store(load_settings(database_url=store.database_url, data_dir=str(store.data_dir))) as repo:
            return len(await repo.phone_versions(account_id))
    return off_loop(asyncio.run, go())


def rows(page) -> list[str]:
    return [r.inner_text() for r in page.locator("tbody tr").all()]


def test_root_leads_to_sign_in_and_a_wrong_secret_is_refused_then_slowed_down(env, context):
    store, server, admin = env
    creds = admin.account()
    page = context.new_page()
    page.goto(server.base_url + "/")
    assert page.url == server.base_url + "/console/signin"
    assert_accessible(page, "signin")
    sign_in(page, server, creds, secret="wrong-secret")
    assert page.get_by_role("alert").inner_text() == "The account ID, client ID or client secret is wrong."
    assert page.get_by_label("Account ID").input_value() == creds.account_id   # kept
    assert_accessible(page, "signin-error")
    sign_in(page, server, creds)
    assert page.url.endswith("/console/phones")
    assert page.get_by_role("heading", name="Phones").is_visible()

    cookie = next(c for c in context.cookies() if c["name"] == "sipphones_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert cookie["secure"] is False  # plain HTTP on loopback; Secure over HTTPS (test_session_cookie_over_https)
    assert 0 < cookie["expires"] - time.time() <= 8 * 3600 + 60

    # three wrong secrets in a row: the next attempt waits, even with the right secret
    other = admin.app(creds.account_id)
    context.clear_cookies()
    for _ in range(3):
        sign_in(page, server, other, secret="guess")
        assert "wrong" in page.get_by_role("alert").inner_text()
    sign_in(page, server, other)
    assert page.get_by_role("alert").inner_text().startswith("Too many wrong attempts: try again in")
    assert_accessible(page, "signin-throttled")
    time.sleep(5.2)
    sign_in(page, server, other)
    assert page.url.endswith("/console/phones")

    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/console/signin?notice=signed_out")
    page.goto(server.base_url + "/console/phones")
    assert page.url.endswith("/console/signin")


def test_create_with_a_validation_error_then_fixed_edit_search_and_delete(env, context):
    store, server, admin = env
    creds = admin.account(users=("ann@example.com", "ben@example.com"))
    page = context.new_page()
    sign_in(page, server, creds)
    assert_accessible(page, "phones-empty")
    page.get_by_role("link", name="Add a phone").click()
    assert_accessible(page, "phone-new")
    # the inputs carry the legacy API's field names
    names = page.locator("form.card [name]").evaluate_all("els => els.map(e => e.name)")
    assert names[:6] == ["csrf", "user_email", "user_name", "authorization_name", "password", "domain"]
    assert {"register_server", "proxy_server", "transport_protocol", "register_server2", "transport_protocol3",
            "registration_expire_time", "voice_mail"} <= set(names)

    page.get_by_label("User email").fill("ann@example.com")
    page.get_by_label("Authorization name").fill("ann")
    page.get_by_label("Password").fill("s3cret")
    page.get_by_label("Domain").fill("sip.example.com")
    page.locator("#register_server").fill("bad host!")
    page.locator("#registration_expire_time").fill("500")
    page.get_by_role("button", name="Create").click()
    assert page.get_by_role("alert").inner_text() == "Some fields need attention."
    assert page.locator("#user_name-error").inner_text() == "Must not be empty."
    assert page.locator("#register_server-error").is_visible()
    assert page.locator("#registration_expire_time-error").inner_text() == "Must be from 1 to 127 (minutes)."
    assert page.locator("#register_server").get_attribute("aria-invalid") == "true"
    assert page.locator("#domain").input_value() == "sip.example.com"   # entered values kept
    assert page.locator("#register_server").input_value() == "bad host!"
    assert phone_count(store, creds.account_id) == 0
    assert_accessible(page, "phone-new-errors")

    page.get_by_label("User name").fill("Ann")
    page.locator("#register_server").fill("sip.example.com:5061")
    page.locator("#transport_protocol").select_option("TLS")
    page.locator("#registration_expire_time").fill("30")
    page.get_by_role("button", name="Create").click()
    assert page.get_by_role("status").inner_text() == "The phone was created."
    assert len(rows(page)) == 1
    assert "ann@example.com" in rows(page)[0] and "sip.example.com:5061" in rows(page)[0] and "TLS" in rows(page)[0]
    assert "unknown" in rows(page)[0]

    # edit: the password left empty stays
    page.get_by_role("link", name="Edit ann@example.com").click()
    assert page.locator("#user_name").input_value() == "Ann"
    assert page.locator("#password").input_value() == ""
    assert page.locator("#user_email").count() == 0    # a phone's user does not change
    assert_accessible(page, "phone-edit")
    page.locator("#user_name").fill("Ann Edited")
    page.locator("#register_server2").fill("backup.example.com")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "The phone was saved."
    assert "Ann Edited" in rows(page)[0] and "backup.example.com" in rows(page)[0]
    with server.client() as c:
        token = c.post("/oauth/token", params={"grant_type": "account_credentials", "account_id": creds.account_id},
                       auth=(creds.client_id, creds.client_secret)).json()["access_token"]
        listed = c.get("/v2/sip_phones", headers={"Authorization": f"Bearer {token}"}).json()["phones"][0]
    assert listed["password"] == "s3cret" and listed["user_name"] == "Ann Edited"
    assert listed["registration_expire_time"] == 30 and listed["transport_protocol"] == "TLS"

    # search, with the API's search_key rules
    store.phone(creds.account_id, "zed", "pw", [Server("sip.other.test")], domain="other.test")
    page.goto(server.base_url + "/console/phones")
    assert len(rows(page)) == 2
    page.get_by_label("Search").fill("ann edited")   # a whole user name, any case
    page.get_by_role("button", name="Show").click()
    assert len(rows(page)) == 1 and "ann@example.com" in rows(page)[0]
    assert "1 phone matching" in page.locator("#summary").inner_text()
    assert_accessible(page, "phones-search")
    page.get_by_label("Search").fill("nothing-like-this")
    page.get_by_role("button", name="Show").click()
    assert rows(page) == ["No phones match this search."]

    # delete, with a confirmation step
    page.goto(server.base_url + "/console/phones?q=ann@example.com")
    page.get_by_role("link", name="Delete ann@example.com").click()
    assert page.get_by_role("heading").inner_text() == "Delete the phone of ann@example.com?"
    assert phone_count(store, creds.account_id) == 2     # nothing deleted by showing the question
    assert_accessible(page, "phone-delete")
    page.get_by_role("button", name="Delete the phone").click()
    assert page.get_by_role("status").inner_text() == "The phone was deleted."
    assert phone_count(store, creds.account_id) == 1
    assert all("ann@example.com" not in r for r in rows(page))


def test_paging_follows_the_api_page_tokens(env, context):
    store, server, admin = env
    creds = admin.account(users=())
    for i in range(32):
        store.phone(creds.account_id, f"user{i}", "pw", [Server("sip.example.com")])
    page = context.new_page()
    sign_in(page, server, creds)
    assert len(rows(page)) == 30
    assert "32 phones; page 1." in page.locator("#summary").inner_text()
    page.get_by_role("link", name="Next page").click()
    assert len(rows(page)) == 2 and "page 2." in page.locator("#summary").inner_text()
    assert page.get_by_role("link", name="Next page").count() == 0
    # a page token of another query (or forged) is refused with the API's sentence, not a crash
    page.goto(page.url.replace("page=", "page=x"))
    assert page.get_by_role("alert").is_visible()


def test_failed_filter_and_check_now_against_kamailio(env, context, kamailio):
    store, server, admin = env
    creds = admin.account(users=())
    good = store.phone(creds.account_id, "alice", "alicepw", [Server(kamailio.server("UDP")),
                                                                Server(kamailio.server("TCP"), "TCP")])
    bad = store.phone(creds.account_id, "bob", "wrong", [Server(kamailio.server("UDP"))])
    now = time.time()
    save_status(store, PhoneStatus(good.id, creds.account_id, True, "registered", 1, kamailio.server("UDP"), "UDP",
                                   "", 200, now, now, 60, now))
    save_status(store, PhoneStatus(bad.id, creds.account_id, False, "failed", 1, kamailio.server("UDP"), "UDP",
                                   "403 Forbidden (wrong password?)", 403, None, now, None, now))
    page = context.new_page()
    sign_in(page, server, creds)
    table = rows(page)
    assert len(table) == 2
    assert any("registered" in r and good.user_email in r for r in table)
    assert any("failed" in r and "403 Forbidden (wrong password?)" in r for r in table)
    assert_accessible(page, "phones")

    page.get_by_label("Only phones whose registration failed").check()
    page.get_by_role("button", name="Show").click()
    assert "failed=1" in page.url
    table = rows(page)
    assert len(table) == 1 and bad.user_email in table[0] and "403 Forbidden" in table[0]
    assert_accessible(page, "phones-failed")

    page.goto(server.base_url + "/console/phones")
    page.get_by_role("button", name=f"Check now: {good.user_email}").click()
    assert page.get_by_role("heading", name=f"Check of {good.user_email}").is_visible()
    results = rows(page)
    assert len(results) == 2
    assert "registered" in results[0] and kamailio.server("UDP") in results[0] and "200" in results[0]
    assert "registered" in results[1] and kamailio.server("TCP") in results[1]
    assert "Every server set registered." in page.locator("#check-summary").inner_text()
    assert_accessible(page, "phone-check")
    assert kamailio.contacts("alice") == []   # the check removed its binding

    page.goto(server.base_url + "/console/phones")
    page.get_by_role("button", name=f"Check now: {bad.user_email}").click()
    assert "auth_rejected" in rows(page)[0]
    assert "No server set registered." in page.locator("#check-summary").inner_text()


CSV_HEADER = "user_email,user_name,authorization_name,password,domain,register_server,transport_protocol\n"


def test_csv_import_preview_confirm_and_export(env, context, tmp_path):
    store, server, admin = env
    creds = admin.account(users=("carl@example.com", "dora@example.com", "eve@example.com"))
    page = context.new_page()
    sign_in(page, server, creds)
    page.get_by_role("link", name="CSV import and export").click()
    assert_accessible(page, "csv")

    bad = tmp_path / "phones.csv"
    bad.write_text(CSV_HEADER + "carl@example.com,Carl,carl,pw1,sip.example.com,sip.example.com,UDP\n"
                   "dora@example.com,Dora,dora,pw2,sip.example.com,not a server!,UDP\n")
    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Preview the import").click()
    assert "nothing was written" in page.get_by_role("alert").inner_text()
    errors = rows(page)
    assert len(errors) == 1 and errors[0].split("\t")[:2] == ["3", "register_server"]
    assert page.get_by_role("button", name="Import now").count() == 0
    assert phone_count(store, creds.account_id) == 0
    assert_accessible(page, "csv-preview-errors")

    good = tmp_path / "phones-fixed.csv"
    good.write_text(CSV_HEADER + "carl@example.com,Carl,carl,pw1,sip.example.com,sip.example.com,UDP\n"
                    "dora@example.com,Dora,dora,pw2,sip.example.com,sip.example.com:5070,TCP\n")
    page.goto(server.base_url + "/console/csv")
    page.get_by_label("CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Preview the import").click()
    summary = page.locator("#preview-summary").inner_text()
    assert "Nothing is written yet" in summary and "create 2, update 0 and leave 0 unchanged" in summary
    assert [r.split("\t") for r in rows(page)] == [["2", "carl@example.com", "created"],
                                                    ["3", "dora@example.com", "created"]]
    assert phone_count(store, creds.account_id) == 0
    assert_accessible(page, "csv-preview")
    page.get_by_role("button", name="Import now").click()
    assert "Created 2, updated 0, unchanged 0, failed 0" in page.locator("#done-summary").inner_text()
    assert phone_count(store, creds.account_id) == 2
    assert_accessible(page, "csv-done")
    # the same file again: unchanged, nothing to do
    page.goto(server.base_url + "/console/csv")
    page.get_by_label("CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Preview the import").click()
    assert "create 0, update 0 and leave 2 unchanged" in page.locator("#preview-summary").inner_text()

    # export: without passwords unless asked
    page.goto(server.base_url + "/console/csv")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the phones as CSV").click()
    exported = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert sorted(r["user_email"] for r in exported) == ["carl@example.com", "dora@example.com"]
    assert {r["password"] for r in exported} == {""}
    dora = next(r for r in exported if r["user_email"] == "dora@example.com")
    assert (dora["register_server"], dora["transport_protocol"]) == ("sip.example.com:5070", "TCP")
    page.get_by_label("Include the SIP passwords").check()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the phones as CSV").click()
    exported = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert sorted(r["password"] for r in exported) == ["pw1", "pw2"]


def test_users_list_and_add(env, context):
    store, server, admin = env
    creds = admin.account(users=("first@example.com",))
    page = context.new_page()
    sign_in(page, server, creds)
    page.get_by_role("link", name="Users").click()
    assert rows(page)[0].startswith("first@example.com")
    assert_accessible(page, "users")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Add the user").click()
    assert page.locator("#email-error").is_visible()
    assert page.get_by_label("Email").input_value() == "not-an-email"
    assert_accessible(page, "users-error")
    page.get_by_label("Email").fill("second@example.com")
    page.get_by_label("First name").fill("Sec")
    page.get_by_role("button", name="Add the user").click()
    assert page.get_by_role("status").inner_text() == "The user was added."
    assert any(r.startswith("second@example.com") for r in rows(page))


def test_read_only_app_sees_no_edit_buttons_and_cannot_post_edits(env, context):
    store, server, admin = env
    creds = admin.account(users=())
    phone = store.phone(creds.account_id, "ro", "pw", [Server("sip.example.com")])
    reader = admin.app(creds.account_id, scopes=READ_ONLY)
    page = context.new_page()
    sign_in(page, server, reader)
    assert len(rows(page)) == 1
    for name in ("Add a phone", f"Edit {phone.user_email}", f"Delete {phone.user_email}"):
        assert page.get_by_role("link", name=name).count() == 0
    assert page.get_by_role("button", name=f"Check now: {phone.user_email}").count() == 0
    page.get_by_role("link", name="CSV import and export").click()
    assert page.get_by_label("CSV file").count() == 0
    assert_accessible(page, "csv-read-only")
    csrf = page.locator("input[name=csrf]").first.input_value()
    # posting anyway, with a valid session and CSRF token: refused, nothing changed
    for path, form in ((f"/console/phones/{phone.id}/edit", {"user_name": "Hacked"}),
                       (f"/console/phones/{phone.id}/delete", {}), ("/console/phones/new", {}),
                       (f"/console/phones/{phone.id}/check", {})):
        r = page.request.post(server.base_url + path, form={"csrf": csrf, **form})
        assert r.status == 403, path
        assert "may not do this" in r.text()
    page.goto(server.base_url + f"/console/phones/{phone.id}/edit")
    assert "may not do this" in page.get_by_role("alert").inner_text()
    assert phone_count(store, creds.account_id) == 1


def test_nothing_of_another_account_by_editing_a_url(env, context):
    store, server, admin = env
    mine = admin.account(users=())
    theirs = admin.account(users=())
    foreign = store.phone(theirs.account_id, "foreign", "pw", [Server("sip.example.com")])
    page = context.new_page()
    sign_in(page, server, mine)
    assert rows(page) == ["No phones."]
    for path in (f"/console/phones/{foreign.id}/edit", f"/console/phones/{foreign.id}/delete"):
        r = page.goto(server.base_url + path)
        assert r.status == 404
        assert page.get_by_role("alert").inner_text() == "There is no such phone in this account."
        assert foreign.user_email not in page.content()
    csrf = page.locator("input[name=csrf]").first.input_value()
    for path in (f"/console/phones/{foreign.id}/delete", f"/console/phones/{foreign.id}/check",
                 f"/console/phones/{foreign.id}/edit"):
        assert page.request.post(server.base_url + path, form={"csrf": csrf, "user_name": "x"}).status == 404
    assert phone_count(store, theirs.account_id) == 1
    assert_accessible(page, "not-found")


def test_a_form_without_its_csrf_token_is_refused(env, context):
    store, server, admin = env
    creds = admin.account(users=())
    phone = store.phone(creds.account_id, "csrf", "pw", [Server("sip.example.com")])
    page = context.new_page()
    sign_in(page, server, creds)
    for form in ({}, {"csrf": "forged"}):
        r = page.request.post(server.base_url + f"/console/phones/{phone.id}/delete", form=form)
        assert r.status == 403 and "did not come from this console" in r.text()
    assert phone_count(store, creds.account_id) == 1
    # the sign-in form too
    fresh = context.browser.new_context()
    try:
        r = fresh.request.post(server.base_url + "/console/signin",
                               form={"account_id": creds.account_id, "client_id": creds.client_id,
                                     "client_secret": creds.client_secret})
        assert r.status == 403
        assert not any(c["name"] == "sipphones_console" for c in fresh.cookies())
    finally:
        fresh.close()
    # a forged or edited session cookie is no session
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as c:
        value = next(ck["value"] for ck in context.cookies() if ck["name"] == "sipphones_console")
        c.cookies.set("sipphones_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/console")
        r = c.get("/console/phones")
        assert r.status_code == 303 and r.headers["location"] == "/console/signin"


def test_usable_on_a_phone_screen(env, browser):
    store, server, admin = env
    creds = admin.account(users=())
    store.phone(creds.account_id, "mobile", "pw", [Server("sip.example.com"), Server("backup.example.com", "TCP")])
    ctx = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    try:
        page = ctx.new_page()
        sign_in(page, server, creds)
        for path, name in (("/console/phones", "mobile-phones"), ("/console/phones/new", "mobile-phone-new"),
                           ("/console/csv", "mobile-csv"), ("/console/users", "mobile-users")):
            page.goto(server.base_url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} scrolls sideways on a phone ({width} px)"
            assert_accessible(page, name)
        # keyboard: the first Tab reaches the skip link, which leads to the content
        page.goto(server.base_url + "/console/phones")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    finally:
        ctx.close()


def test_session_cookie_over_https_is_secure(env):
    """Behind a TLS-terminating proxy (``X-Forwarded-Proto: https`` from a trusted proxy) the cookie is Secure."""
    store, server, admin = env
    creds = admin.account(users=())
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as c:
        r = c.get("/console/signin", headers={"X-Forwarded-Proto": "https"})
        pre = r.headers["set-cookie"]
        assert "Secure" in pre and "HttpOnly" in pre and "SameSite=strict" in pre.replace("Strict", "strict")
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
        # (a Secure cookie: httpx sends it over https only; sent by hand here, as a browser would over https)
        pre_value = pre.split(";", 1)[0]
        c.cookies.clear()
        r = c.post("/console/signin", headers={"X-Forwarded-Proto": "https", "Cookie": pre_value},
                   data={"csrf": csrf, "account_id": creds.account_id, "client_id": creds.client_id,
                         "client_secret": creds.client_secret})
        assert r.status_code == 303
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("sipphones_console="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/console" in cookie and "Max-Age=28800" in cookie
