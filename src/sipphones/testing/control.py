"""A client of the emulator's HTTP control plane (``/_sipphones/v1``, see ``sipphones.api.control``):
reset, fresh accounts, snapshots, the clock, the request journal and the fault rules, as Python
calls on a running server. The pytest plugin hands one to every test.

Every call has a deadline (``timeout``) and a refused call raises ``ControlError`` with the
server's answer, never a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

PREFIX = "/_sipphones/v1"
DEFAULT_TIMEOUT = 10.0


class ControlError(RuntimeError):
    """The control plane refused a call (or could not be reached)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FreshAccount:
    """An account made for one test: its app's credentials and an access token."""

    account_id: str
    client_id: str
    client_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    base_url: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of a Zoom API call with this account's token."""
        return {"Authorization": f"Bearer {self.access_token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on the emulator, with this account's token."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)


class Control:
    """The control plane of the emulator at ``base_url`` (operator token ``admin_token``).

    ``account_id``: the account the journal and fault calls refer to by default (the pytest
    plugin binds each test's control to its fresh account); None: every account."""

    def __init__(self, base_url: str, admin_token: str, *, account: FreshAccount | None = None,
                 account_id: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.account = account  # the pytest plugin's: the test's fresh account
        self.account_id = account.account_id if account is not None else account_id
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout,
                                          headers={"Authorization": f"Bearer {admin_token}"})
        self._admin_token = admin_token
        self.clock = Clock(self)
        self.journal = Journal(self)
        self.faults = Faults(self)

    @property
    def url(self) -> str:
        """The emulator's base URL (where the Zoom API answers)."""
        return self.base_url

    def bound(self, account: FreshAccount) -> "Control":
        """The same control plane for one account: its journal and fault calls refer to it by default."""
        return Control(self.base_url, self._admin_token, account=account, http=self._http)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
             expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        try:
            response = self._http.request(method, PREFIX + path, json=json, params=params)
        except httpx.HTTPError as e:
            raise ControlError(f"{method} {self.base_url}{PREFIX}{path}: {type(e).__name__}: {e} "
                               "(is the emulator running, in emulator mode?)") from None
        if response.status_code not in expect:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ControlError(f"{method} {PREFIX}{path}: HTTP {response.status_code}: {message}",
                               response.status_code)
        return response.json() if response.content else None

    # --- state ----------------------------------------------------------------------------
    def health(self) -> dict:
        return self.call("GET", "/health")

    def reset(self, account_id: str | None = None) -> dict:
        """Everything back to the seed (or one account: ``account_id``)."""
        return self.call("POST", "/reset", json={"account_id": account_id} if account_id else {})

    def fresh_account(self, *, plan: str = "pro", scopes: list[str] | None = None,
                      users: list[str] | None = None, unlimited: bool = False,
                      sip_phone_integration: bool = True) -> FreshAccount:
        """A new account with a Server-to-Server app and a token (``users``: e-mail addresses of its users)."""
        body: dict[str, Any] = {"plan": plan, "users": list(users or []), "unlimited": unlimited,
                                "sip_phone_integration": sip_phone_integration}
        if scopes is not None:
            body["scopes"] = list(scopes)
        data = self.call("POST", "/accounts", json=body)
        return FreshAccount(data["account_id"], data["client_id"], data["client_secret"], data["access_token"],
                            self.base_url)

    def snapshot(self) -> dict:
        return self.call("GET", "/snapshot")

    def load_snapshot(self, snapshot: dict, *, baseline: bool = False) -> dict:
        return self.call("PUT", "/snapshot", json=snapshot, params={"baseline": "1"} if baseline else None)


class Clock:
    """The service's clock: ``advance(3600)`` expires every access token issued before it."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def now(self) -> float:
        return self._control.call("GET", "/clock")["now"]

    def offset(self) -> float:
        return self._control.call("GET", "/clock")["offset_seconds"]

    def advance(self, seconds: float) -> float:
        return self._control.call("POST", "/clock/advance", json={"seconds": seconds})["now"]

    def reset(self) -> None:
        self._control.call("POST", "/clock/reset")


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Journal:
    """The requests the emulator answered (secrets masked), newest last."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def requests(self, *, method: str | None = None, path: str | None = None, account_id: str | None = None,
                 since: float | None = None, until: float | None = None, limit: int | None = None) -> list[dict]:
        params = _without_none(method=method, path=path, account_id=account_id or self._control.account_id,
                               since=since, until=until, limit=limit)
        return self._control.call("GET", "/journal", params=params)["requests"]

    def count(self, *, method: str | None = None, path: str | None = None, account_id: str | None = None,
              body: dict | None = None) -> int:
        """How many recorded requests match (``body``: fields the JSON body must hold)."""
        matcher = _without_none(method=method, path=path, account_id=account_id or self._control.account_id,
                                body=body)
        return self._control.call("POST", "/journal/count", json=matcher)["count"]

    def clear(self) -> None:
        self._control.call("DELETE", "/journal")


class Faults:
    """Fault rules: make the emulator answer an error, late, malformed, or not at all."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def add(self, *, path: str = "*", method: str | None = None, action: str = "status", status: int | None = None,
            retry_after: int | str | None = None, probability: float | None = None, delay_ms: int | None = None,
            delay_max_ms: int | None = None, times: int | None = None, account_id: str | None = None,
            any_account: bool = False) -> dict:
        """A rule (see the control plane's ``POST /faults``); by default it applies to this
        control's account only (``any_account=True``: to every account). Returns it with its ``id``."""
        rule = _without_none(method=method, path=path, action=action, status=status, retry_after=retry_after,
                             probability=probability, delay_ms=delay_ms, delay_max_ms=delay_max_ms,
                             account_id=None if any_account else (account_id or self._control.account_id))
        rule["times"] = times
        return self._control.call("POST", "/faults", json=rule)

    def list(self) -> list[dict]:
        data = self._control.call("GET", "/faults")
        return data["faults"] if isinstance(data, dict) and "faults" in data else data

    def remove(self, rule_id: str) -> None:
        self._control.call("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        self._control.call("DELETE", "/faults")
