"""``sipphones serve``: run the API (optionally seeding a demo account)."""

from __future__ import annotations

import os
import shlex
import sys

import typer

from sipphones import gc_pause
from sipphones.cli.runtime import DatabaseOption, DataDirOption, fail, open_store, run, settings_from
from sipphones.config import Settings

DEMO_ACCOUNT_ID = "DemoAccount00000000001"
DEMO_USERS = (("alice@example.com", "Alice", "Anders"), ("bob@example.com", "Bob", "Berg"),
              ("carol@example.com", "Carol", "Chen"))


DEMO_APP_NAME = "Demo app"


async def seed_demo(settings: Settings) -> dict:
    """Make sure the demo account and users exist, and give the demo account one app with a fresh
    secret (shown once): the app of an earlier ``--demo`` start is replaced, not added to."""
    from sipphones.accounts.models import Plan
    from sipphones.accounts.service import AccountService
    from sipphones.phones import rules

    async with open_store(settings, create=True) as repo:
        svc = AccountService(repo)
        if await repo.get_account(DEMO_ACCOUNT_ID) is None:
            await svc.create_account("Demo account", Plan.BUSINESS, account_id=DEMO_ACCOUNT_ID)
        for email, first, last in DEMO_USERS:
            if await repo.get_user_by_email(DEMO_ACCOUNT_ID, email) is None:
                await svc.create_user(DEMO_ACCOUNT_ID, email, first, last)
        for app in await repo.list_apps(DEMO_ACCOUNT_ID):
            if app.name == DEMO_APP_NAME:
                await svc.delete_app(app.client_id)
        created = await svc.create_app(DEMO_ACCOUNT_ID, DEMO_APP_NAME)
        taken = {p.user_email.lower() async for p in repo.iter_phones(DEMO_ACCOUNT_ID)}
        example_email = next(
            (email + suffix for email, _, _ in DEMO_USERS for suffix in ("",) + rules.CURRENT_SUFFIXES
             if (email + suffix) not in taken),
            None,
        )
        if example_email is None:  # every demo address has a phone: add one more demo user
            n = len(taken)
            user = await svc.create_user(DEMO_ACCOUNT_ID, f"demo{n}@example.com", "Demo", str(n))
            example_email = user.email
    return {"account_id": DEMO_ACCOUNT_ID, "client_id": created.app.client_id,
            "client_secret": created.client_secret, "example_email": example_email}


def demo_instructions(base: str, demo: dict) -> str:
    token_cmd = (
        f"curl -s -X POST -u {shlex.quote(demo['client_id'] + ':' + demo['client_secret'])} "
        f"{shlex.quote(base + '/oauth/token?grant_type=account_credentials&account_id=' + demo['account_id'])}"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    )
    body = (
        '{"user_email": "%s", "user_name": "1001", "authorization_name": "1001", "password": "s3cret", '
        '"domain": "sip.example.com", "server": {"register_server": "192.0.2.10", "proxy_server": "192.0.2.10", '
        '"transport_protocol": "UDP"}, "voice_mail": "4000"}' % demo["example_email"]
    )
    return "\n".join([
        "Demo account ready.",
        f"  account_id:    {demo['account_id']}",
        f"  client_id:     {demo['client_id']}",
        f"  client_secret: {demo['client_secret']}   (shown only now)",
        "",
        "Create a SIP phone (curl and python3 only; the answer, then its HTTP status):",
        f"  TOKEN=$({token_cmd})",
        f"  curl -s -w '\\nHTTP %{{http_code}}\\n' -X POST {base}/v2/sip_phones/phones "
        f"-H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{body}'",
        "",
        f"API docs: {base}/docs",
    ])


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (1-65535)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (2 on a 2-core machine)."),
    demo: bool = typer.Option(False, "--demo", help="Seed a demo account, users and an app; print credentials "
                                                    "(runs in emulator mode)."),
    emulator: bool = typer.Option(False, "--emulator", envvar="SIPPHONES_EMULATOR",
                                  help="Emulator mode for test suites: the control plane under /_sipphones/v1 "
                                       "(reset, seed, snapshot, clock, journal, faults), behind the operator token "
                                       "SIPPHONES_ADMIN_TOKEN (generated and printed when unset)."),
    seed: str = typer.Option(None, "--seed", envvar="SIPPHONES_SEED_FILE", show_default=False,
                             help="Emulator mode: a seed file (YAML or JSON) the store is set to at start and "
                                  "by every reset (implies --emulator)."),
    redis_url: str = typer.Option(None, "--redis-url", envvar="SIPPHONES_REDIS_URL",
                                  help="Keep rate-limit counters in Redis (shared by several processes)."),
    redis_timeout_ms: int = typer.Option(None, "--redis-timeout-ms", min=1, max=60_000,
                                         help="Milliseconds Redis has to connect or answer before a request "
                                              "passes unlimited [env SIPPHONES_REDIS_TIMEOUT_MS; default 50]."),
    redis_breaker_cooldown_ms: int = typer.Option(
        None, "--redis-breaker-cooldown-ms", min=0, max=3_600_000,
        help="Milliseconds requests pass without asking a Redis that failed, before one asks it again "
             "[env SIPPHONES_REDIS_BREAKER_COOLDOWN_MS; default 2000]."),
    log_level: str = typer.Option("warning", "--log-level"),
    http: str = typer.Option("one-send", "--http",
                             help="HTTP/1.1 implementation: one-send (uvicorn's httptools protocol sending a "
                                  "response's head and body in one write; the default), httptools, h11 or auto "
                                  "(uvicorn's own)."),
    api_url: str = typer.Option(None, "--api-url", show_default=False,
                                help="The token answer's api_url (e.g. https://api.example.com); default: the "
                                     "address the client connected to."),
    keep_alive: int = typer.Option(None, "--keep-alive", show_default=False,
                                   help="Seconds an idle keep-alive connection stays open (default 75)."),
    max_connections: int = typer.Option(None, "--max-connections", show_default=False,
                                        help="Open connections per worker; past it requests get a 503 "
                                             "(default 4096)."),
    max_body_bytes: int = typer.Option(None, "--max-body-bytes", show_default=False,
                                       help="Largest request body of the JSON endpoints, bytes (default 65536)."),
    database_url: str = DatabaseOption,
    data_dir: str = DataDirOption,
):
    """Run the Zoom-compatible API server."""
    from sipphones.cli import serving, supervision
    from sipphones.storage.database import DatabaseUrlError, is_sqlite, migrate, sqlite_file
    from sipphones.storage.keys import KeyError_, load_master_key

    if not 1 <= port <= 65535:
        fail(f"--port must be from 1 to 65535, not {port}.")
    if http not in HTTP_CHOICES:
        fail(f"--http must be one of {', '.join(HTTP_CHOICES)}, not {http!r}.")
    # HTTP options go where the workers (and the settings below) read them: the environment.
    for name, value in (("API_URL", api_url), ("HTTP_KEEP_ALIVE_S", keep_alive),
                        ("HTTP_MAX_CONNECTIONS", max_connections), ("HTTP_MAX_BODY_BYTES", max_body_bytes)):
        if value is not None:
            os.environ["SIPPHONES_" + name] = str(value)
    if demo and seed:
        fail("--demo and --seed both set the store up at start: use one of them.")
    emulator = bool(emulator or demo or seed)
    if emulator:
        if workers > 1:
            fail("--emulator runs one worker process: the clock, journal and fault rules live in its memory "
                 "(leave out --workers).")
        os.environ["SIPPHONES_EMULATOR"] = "1"
        if seed:
            seed = _check_seed(seed)
            os.environ["SIPPHONES_SEED_FILE"] = seed
    settings = settings_from(database_url, data_dir)
    if redis_url:
        settings.redis_url = redis_url
    if redis_timeout_ms is not None:
        settings.redis_timeout_ms = redis_timeout_ms
    if redis_breaker_cooldown_ms is not None:
        settings.redis_breaker_cooldown_ms = redis_breaker_cooldown_ms
    url = settings.resolved_database_url()
    if workers > 1 and not settings.redis_url:
        print(f"warning: {workers} workers without --redis-url count rate limits per worker process "
              "(each allows the full limit); set SIPPHONES_REDIS_URL to share one limit.", file=sys.stderr, flush=True)
    try:
        migrate(url)  # once, before any worker starts
    except DatabaseUrlError as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001
        fail(f"cannot open the database: {e}")
    try:
        master = load_master_key(settings.secret_key, settings.data_dir)  # create it once, before the workers
    except KeyError_ as e:
        fail(str(e))
    if sqlite_file(url) is None and not is_sqlite(url):  # a shared store: every instance must hold its key
        from sipphones.storage.key_check import MISMATCH, key_opens_store

        try:
            fits = key_opens_store(url, master)
        except Exception as e:  # noqa: BLE001
            fail(f"cannot open the database: {e}")
        if not fits:  # a warning, not a refusal: a key rotation or a test may do it on purpose
            print(f"warning: {MISMATCH}; this instance answers 500 for the phones it cannot decrypt, "
                  "and the others cannot read the passwords it stores.", file=sys.stderr, flush=True)
    _warn_of_open_directories(settings.data_dir, sqlite_file(url))
    if demo:
        info = run(lambda: seed_demo(settings))
        print(demo_instructions(f"http://{_url_host(host)}:{port}", info), flush=True)
    # Workers (separate processes) read the same settings from the environment.
    os.environ["SIPPHONES_DATABASE_URL"] = url
    os.environ["SIPPHONES_DATA_DIR"] = str(settings.data_dir)
    if settings.redis_url:
        os.environ["SIPPHONES_REDIS_URL"] = settings.redis_url
    os.environ["SIPPHONES_REDIS_TIMEOUT_MS"] = str(settings.redis_timeout_ms)
    os.environ["SIPPHONES_REDIS_BREAKER_COOLDOWN_MS"] = str(settings.redis_breaker_cooldown_ms)
    checkpoints = start_checkpoints(url, settings)
    supervision.watch_children(checkpoints)
    config = {"app": "sipphones.api.app:app_from_env", "factory": True, "log_level": log_level,
              "access_log": False, "lifespan": "on", "http": _http_protocol(http), **http_limits(settings, http)}
    try:
        try:
            sock = serving.listen(host, port)
        except serving.ListenError as e:
            fail(str(e))
        print(f"sipphones listening on http://{_url_host(host)}:{port}", flush=True)
        if settings.emulator:
            # The workers read the same token; it is printed only when it was generated here.
            generated = not os.environ.get("SIPPHONES_ADMIN_TOKEN", "").strip()
            os.environ["SIPPHONES_ADMIN_TOKEN"] = settings.admin_token
            print(f"emulator mode: control plane at http://{_url_host(host)}:{port}/_sipphones/v1"
                  + (f" (operator token: {settings.admin_token})" if generated else
                     " (operator token: SIPPHONES_ADMIN_TOKEN)"), flush=True)
        if workers > 1:
            gc_pause.resume()  # the supervisor has started; each worker pauses its own collector
            status = serving.serve_workers(config, sock, workers, settings.worker_healthcheck_s)
        else:
            status = serving.serve_one(config, sock)
    finally:
        if checkpoints is not None:
            checkpoints.stop()
    if status:
        raise typer.Exit(status)


def _check_seed(path: str) -> str:
    """The seed file's absolute path, once it has been read and checked (one sentence if not)."""
    from pathlib import Path

    from sipphones.emulator.seed import Seed, SeedError

    try:
        Seed.load(path)
    except SeedError as e:
        fail(str(e))
    return str(Path(path).resolve())


def start_checkpoints(url: str, settings: Settings):
    """On a SQLite store, fork the process that runs the WAL checkpoints (``storage.checkpoints``),
    kept running by a ``CheckpointKeeper``, and raise the workers' ``wal_autocheckpoint`` to its
    fallback; None otherwise (PostgreSQL, or ``SIPPHONES_SQLITE_CHECKPOINT_INTERVAL_MS=0``: every
    commit may checkpoint, SQLite's way)."""
    from sipphones.storage import checkpoints
    from sipphones.storage.database import sqlite_file

    if settings.sqlite_checkpoint_interval_ms == 0 or not hasattr(os, "fork"):  # no fork: SQLite's own way
        return None
    path = sqlite_file(url)
    if path is None:
        return None
    process = checkpoints.CheckpointKeeper(path, settings.sqlite_checkpoint_interval_ms / 1000)
    # Workers read their settings from the environment; a value the operator set is kept.
    os.environ.setdefault("SIPPHONES_SQLITE_WAL_AUTOCHECKPOINT", str(checkpoints.FALLBACK_PAGES))
    return process


def _warn_of_open_directories(data_dir, database_file: str | None) -> None:
    """A warning for the data directory and the SQLite file's directory when other users may
    enter them; never changed (see ``storage.files``: one may be shared on purpose)."""
    from pathlib import Path

    from sipphones.storage import files

    dirs = dict.fromkeys([Path(data_dir).resolve()] + ([Path(database_file).resolve().parent] if database_file else []))
    for directory in dirs:
        warning = files.open_dir_warning(directory)
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)


HTTP_CHOICES = ("one-send", "httptools", "h11", "auto")


def http_limits(settings: Settings, choice: str) -> dict:
    """uvicorn's own settings for the HTTP limits. The one-send protocol enforces the head size,
    the idle and head deadlines and the connection cap itself (``sipphones.api.http_protocol``);
    for uvicorn's protocols the nearest uvicorn settings stand in: h11's head limit, and
    ``limit_concurrency`` (a text/plain 503 past that many connections or running requests)."""
    out: dict = {
        "timeout_keep_alive": settings.http_keep_alive_s,
        "h11_max_incomplete_event_size": settings.http_max_head_bytes,
        "ws": "none",  # no WebSocket route: an Upgrade request is an ordinary request
    }
    if _http_protocol(choice) in ("httptools", "h11", "auto"):
        out["limit_concurrency"] = settings.http_max_connections
    return out


def _http_protocol(choice: str = "one-send") -> str:
    """uvicorn's ``http`` setting for ``--http``: one-send is ``sipphones.api.http_protocol``
    (uvicorn's choice where httptools is missing), the others are uvicorn's names."""
    if choice != "one-send":
        return choice
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "auto"
    from sipphones.api.http_protocol import PROTOCOL

    return PROTOCOL


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
