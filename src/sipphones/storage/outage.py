"""PostgreSQL that does not answer: the deadlines every connection gets, and the driver errors
that mean "the store is unavailable" (``repository.StoreUnavailable``), on both paths (the hot
path's psycopg pool and SQLAlchemy's engine).

Deadlines, so that no request waits on a database that is gone longer than a client waits for
its answer (defaults below; a value the database URL sets itself is kept):

* connecting: ``connect_timeout`` (libpq, whole seconds);
* a dead peer (host gone, cable pulled: no FIN, no RST): TCP keepalives and ``tcp_user_timeout``
  close the socket instead of the kernel's ~15 minutes of retransmissions;
* a hot-path statement: the server's ``statement_timeout`` (a lock held by someone else, a
  database too slow), on the hot path's connections only: admin work (deleting a large account,
  migrations) may take longer;
* waiting for a pooled connection: the pools' own timeouts (``POOL_WAIT_S``);
* coming back: the hot path's pool retries a lost connection for ``RECONNECT_GIVE_UP_S`` at
  most before the next request starts again from a one-second pause.

Errors. A connection refused or closed (restart, ``pg_terminate_backend``), "the database system
is starting up / shutting down", a statement cancelled by its timeout, a pool that hands out no
connection in time: ``StoreUnavailable``, which the API answers with Zoom's error body and a 503.
PostgreSQL's "run it again" errors (deadlock, serialization failure) are not outages: the runners
retry them (``storage.raw.runner.retrying``).
"""

from __future__ import annotations

from sipphones.repository import StoreUnavailable
from sipphones.storage.raw.runner import RETRY_SQLSTATES

CONNECT_TIMEOUT_S = 3          # libpq connect_timeout (it counts whole seconds; 2 at least)
POOL_WAIT_S = 5.0              # seconds a request waits for a pooled connection
# psycopg_pool retries a failed connection with a doubling pause (1, 2, 4 s ...) until this many
# seconds have passed, then gives it up; the next request that finds no connection starts a new
# series at once. Short: after a long outage the next try is never minutes away.
RECONNECT_GIVE_UP_S = 5.0
HOT_STATEMENT_TIMEOUT_MS = 15_000
TCP_USER_TIMEOUT_MS = 15_000   # unacknowledged data on a connection for this long: it is dead
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def connect_args(conninfo: str, *, hot: bool) -> dict:
    """psycopg ``connect`` keyword arguments with the deadlines above, for those the URL leaves unset."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(conninfo)
    wanted: dict = {"connect_timeout": CONNECT_TIMEOUT_S, "tcp_user_timeout": TCP_USER_TIMEOUT_MS, **KEEPALIVE}
    if hot:
        wanted["options"] = f"-c statement_timeout={HOT_STATEMENT_TIMEOUT_MS}"
    return {k: v for k, v in wanted.items() if k not in given}


def is_outage(error: BaseException) -> bool:
    """True for a psycopg (or psycopg_pool) error that says the database is not answering, raw
    or wrapped by SQLAlchemy (``.orig``)."""
    import psycopg

    error = getattr(error, "orig", None) or error
    if isinstance(error, psycopg.OperationalError):  # connection, shutdown, cancel, PoolTimeout
        return getattr(error, "sqlstate", None) not in RETRY_SQLSTATES
    return isinstance(error, psycopg.InterfaceError)  # "the connection is closed"


def unavailable(error: BaseException) -> StoreUnavailable:
    """The domain's error for an outage, saying what the driver said (its first line: no statement
    parameters, which the drivers never put there anyway)."""
    text = str(error).strip().splitlines()
    return StoreUnavailable(f"{type(error).__name__}: {text[0] if text else 'no answer'}")


def map_engine_outages(engine) -> None:
    """Make a SQLAlchemy engine (sync, or an async engine's ``sync_engine``) raise
    ``StoreUnavailable`` for outages, through its public ``handle_error`` event. A failed pre-ping
    is left alone: the pool then opens a fresh connection, which is what a pre-ping is for."""
    from sqlalchemy import event

    @event.listens_for(engine, "handle_error")
    def _outage(context) -> None:  # noqa: ANN001
        if context.is_pre_ping:
            return
        if context.is_disconnect or is_outage(context.original_exception):
            raise unavailable(context.original_exception) from context.original_exception
