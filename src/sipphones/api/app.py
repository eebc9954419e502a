"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from sipphones import gc_pause, parent_watch
from sipphones.api import check, control, control_faults, control_journal, meta, oauth, oauth_user, sip_phones, status, users
from sipphones.api.dispatch import DirectDispatch, RouteTable
from sipphones.api.emulator_wire import EmulatorWire
from sipphones.api.responses import error_response
from sipphones.api.state import AppState
from sipphones.console.routes import routes as console_routes
from sipphones.config import Settings, load_settings
from sipphones.errors import BadRequest, InternalError, MethodNotAllowed, NotFound, ZoomError

log = logging.getLogger("sipphones.api")


async def _http_error(request: Request, exc: HTTPException):
    if exc.status_code == 404:
        return error_response(NotFound())
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(), dict(exc.headers or {}))
    return error_response(ZoomError(exc.detail or "Bad Request", status=exc.status_code, code=exc.status_code))


async def _unexpected(request: Request, exc: Exception):
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(InternalError())


def create_app(settings: Settings | None = None, *, run_migrations: bool = True, extra_routes=(),
               watch_parent: bool = False) -> Starlette:
    """``watch_parent``: a worker of ``serve --workers N`` stops when its supervisor is gone
    (``sipphones.parent_watch``; nothing to watch in a process that is not such a worker)."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        state = AppState.build(settings, run_migrations=run_migrations)
        app.state.sipphones = state
        app.sipphones = state          # the same object, for api.state.app_state
        await state.start()
        unwatch = parent_watch.watch(asyncio.get_running_loop()) if watch_parent else None
        gc_pause.resume()              # started: the collector back on (see sipphones.gc_pause)
        try:
            yield
        finally:
            if unwatch is not None:
                unwatch()
            await state.close()

    import swagger_ui_bundle

    routes = [
        *oauth.routes,
        *oauth_user.routes,
        *sip_phones.routes,
        *users.routes,
        *meta.routes,
        *check.routes,
        *status.routes,
        *console_routes,
        *extra_routes,
        # the control plane: emulator mode only
        *([control.mount([*control_journal.routes, *control_faults.routes])] if settings.emulator else []),
        Mount("/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static"),
    ]
    return ZoomApp(
        routes=routes,
        direct_routes=[*oauth.routes, *sip_phones.routes, *users.routes],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected, ZoomError: _zoom_error},
        emulator=settings.emulator,
    )


class ZoomApp(Starlette):
    """The Starlette application with the Zoom routes dispatched directly (see ``dispatch``): the
    same endpoints and answers, without the generic routing and middleware on the hot path."""

    sipphones: AppState | None = None  # set by the lifespan (api.state.app_state)

    def __init__(self, *, direct_routes, emulator: bool = False, **kwargs):
        """``emulator``: the request journal and the fault rules around every Zoom path
        (``sipphones.api.emulator_wire``), emulator mode only."""
        super().__init__(**kwargs)
        # No redirect for a trailing slash: Starlette builds its Location from the Host header
        # (``Host: evil.example`` -> ``http://evil.example/...``); a Zoom-shaped 404 instead.
        self.router.redirect_slashes = False
        self._dispatch = DirectDispatch(self, RouteTable(direct_routes), super().__call__)
        if emulator:
            self._dispatch = EmulatorWire(self._dispatch, self._emulator, self._account_of_token)

    def _emulator(self):
        return None if self.sipphones is None else self.sipphones.emulator

    def _account_of_token(self, token: str) -> str | None:
        if self.sipphones is None:
            return None
        try:
            return self.sipphones.tokens.read(token).account_id
        except ZoomError:
            return None

    async def __call__(self, scope, receive, send) -> None:
        await self._dispatch(scope, receive, send)


async def _zoom_error(request: Request, exc: ZoomError):
    return error_response(exc)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory sipphones.api.app:app_from_env`` (used by serve)."""
    return create_app(run_migrations=False, watch_parent=True)


__all__ = ["create_app", "app_from_env", "BadRequest"]
