"""Testing a Zoom integration against sipphones, with the pytest plugin that ships with it.

Run it with ``pytest examples/test_zoom_integration.py``: the plugin (registered when sipphones is
installed) starts one emulator for the run, and each test gets a fresh account, app and token in
the ``sipphones`` fixture, with the emulator's control plane: ``faults``, ``journal``, ``clock``.

The code under test here is sipphones' own Python client; put your integration in its place:
it only needs the base URL and the Server-to-Server credentials.
"""

from __future__ import annotations

import httpx
import pytest

from sipphones.client import SipPhonesClient

PHONE = {
    "user_email": "alice@example.com", "user_name": "1001", "authorization_name": "1001", "password": "s3cret",
    "domain": "sip.example.com", "server": {"register_server": "192.0.2.10", "proxy_server": "192.0.2.10",
                                            "transport_protocol": "UDP"},
}


def zoom_client(sipphones, **options) -> SipPhonesClient:
    """The integration under test, pointed at the emulator with the test's account."""
    account = sipphones.account
    return SipPhonesClient(account.account_id, account.client_id, account.client_secret,
                           base_url=sipphones.url + "/v2", **options)


@pytest.mark.sipphones(users=["alice@example.com"])
def test_create_is_retried_after_rate_limiting(sipphones):
    # The next two creates are refused with Zoom's 429 and "Retry-After: 1".
    sipphones.faults.add(method="POST", path="/v2/sip_phones/phones", status=429, retry_after=1, times=2)
    retries = []
    with zoom_client(sipphones, on_retry=retries.append) as zoom:
        phone = zoom.create_phone(PHONE)
    assert phone["user_email"] == "alice@example.com"
    assert len(retries) == 2
    # What the integration sent: exactly three creates for alice (two refused, one made).
    assert sipphones.journal.count(method="POST", path="/v2/sip_phones/phones",
                                   body={"user_email": "alice@example.com"}) == 3


def test_an_expired_token_is_replaced(sipphones):
    with zoom_client(sipphones) as zoom:
        zoom.list_phones()
        sipphones.clock.advance(3600)  # an hour later: the access token has expired
        zoom.list_phones()             # the client gets a 401, takes a new token, asks again
    assert sipphones.journal.count(method="POST", path="/oauth/token") == 2


def test_a_dropped_connection(sipphones):
    sipphones.faults.add(method="GET", path="/v2/sip_phones*", action="drop", times=1)
    url, headers = sipphones.url + "/v2/sip_phones/phones", sipphones.account.headers
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, headers=headers)
    assert httpx.get(url, headers=headers).status_code == 200  # the rule was for one request
