"""The emulator in this process: the ASGI app behind an ``httpx.AsyncClient``
(``httpx.ASGITransport``), no port, no child process; the control plane as Python calls on the
app's own objects (``sipphones.emulator.service.Emulator``: ``reset``, ``fresh_account``,
``snapshot``, ``load_snapshot``, ``clock``, ``journal``, ``faults``).

    async with InProcessEmulator(seed="seed.yaml") as zoom:
        account = await zoom.fresh_account(users=["alice@example.com"])
        async with zoom.client(account["access_token"]) as http:
            r = await http.get("/v2/sip_phones")
        zoom.clock.advance(3600)           # the token has expired
        await zoom.reset()
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import httpx

BASE_URL = "http://sipphones.test"


class InProcessEmulator:
    def __init__(self, *, seed: str | Path | None = None, data_dir: str | Path | None = None,
                 database_url: str = "", **settings: Any) -> None:
        self._seed = str(seed) if seed else ""
        self._data_dir = data_dir
        self._database_url = database_url
        self._settings = settings
        self._stack: contextlib.AsyncExitStack | None = None
        self.app: Any = None
        self.emulator: Any = None

    async def __aenter__(self) -> "InProcessEmulator":
        from sipphones.api.app import create_app
        from sipphones.config import load_settings

        stack = contextlib.AsyncExitStack()
        try:
            data_dir = self._data_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="sipphones-"))
            settings = load_settings(data_dir=str(data_dir), database_url=self._database_url or None, emulator=True,
                                     seed_file=self._seed or None, **self._settings)
            self.app = create_app(settings)
            await stack.enter_async_context(self.app.router.lifespan_context(self.app))
            self.emulator = self.app.state.sipphones.emulator
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    # --- the Zoom API ---------------------------------------------------------------------
    def client(self, access_token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client on the app (``access_token``: sent as the Bearer token)."""
        headers = dict(kwargs.pop("headers", {}))
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers,
                                 **kwargs)

    # --- the control plane, as Python calls ----------------------------------------------
    @property
    def clock(self):
        return self.emulator.clock

    @property
    def journal(self):
        return self.emulator.journal

    @property
    def faults(self):
        return self.emulator.faults

    async def reset(self, account_id: str | None = None) -> dict:
        return await self.emulator.reset(account_id)

    async def fresh_account(self, **options: Any) -> dict:
        return await self.emulator.fresh_account(**options)

    async def snapshot(self) -> dict:
        return await self.emulator.snapshot()

    async def load_snapshot(self, snapshot: dict, *, baseline: bool = False) -> dict:
        return await self.emulator.load_snapshot(snapshot, baseline=baseline)
