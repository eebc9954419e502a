"""``sipphones monitor``: keep the store's phones registered until SIGTERM/SIGINT.

On PostgreSQL any number of monitors, on any machines, divide the phones (``monitor.fleet``);
on SQLite a second monitor of the same file is refused (an exclusive lock on
``<file>.monitor.lock``, released by the kernel when the process ends, however it ends).

Runs in the foreground (a service manager's job to daemonise), logs to stderr, prints one
line when it is up (how many phones, where the metrics are) and one when it has stopped. The
first SIGTERM or SIGINT un-registers every phone (bounded by ``--stop-timeout``) and exits 0;
a second one exits at once with 130, leaving bindings to expire on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Iterator

import typer

from sipphones.cli.check import nameservers_option
from sipphones.cli.runtime import CliError, DatabaseOption, DataDirOption, fail, open_store, run, settings_from

__all__ = ["monitor"]

log = logging.getLogger("sipphones.monitor")


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def monitor(
    account: list[str] = typer.Option(None, "--account", help="Only phones of this account (repeatable)."),
    phone: list[str] = typer.Option(None, "--phone", help="Only this phone (repeatable)."),
    metrics_port: int = typer.Option(None, "--metrics-port", min=0, max=65535,
                                     help="Serve Prometheus metrics on this port (0: any free port)."),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="Address of the metrics endpoint."),
    reload_interval: float = typer.Option(30.0, "--reload-interval", min=0.1,
                                          help="Seconds between polls of the store for created, changed "
                                               "and deleted phones."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1,
                                  help="Seconds each server may take to answer before the next set is tried."),
    jitter: float = typer.Option(0.1, "--jitter", min=0.0, max=0.9,
                                 help="Refresh up to this fraction of the refresh interval early, at random."),
    probe_interval: float = typer.Option(120.0, "--probe-interval", min=0.1,
                                         help="While on a backup server set, seconds between tries of the "
                                              "preferred one (fail-back)."),
    retry_interval: float = typer.Option(30.0, "--retry-interval", min=0.1,
                                         help="When every set failed: seconds before the first retry "
                                              "(doubling per failed round up to --retry-max)."),
    retry_max: float = typer.Option(600.0, "--retry-max", min=0.1, help="Longest wait between retries."),
    start_rate: float = typer.Option(200.0, "--start-rate", min=0.0,
                                     help="First registrations per second when many phones start (0: all at once)."),
    stop_timeout: float = typer.Option(20.0, "--stop-timeout", min=0.1,
                                       help="Bound, in seconds, of the un-REGISTERs on stop (10,000 phones take "
                                            "about 5 s on a 2-core machine); what is left expires at the registrar."),
    status_heartbeat: float = typer.Option(900.0, "--status-heartbeat", min=0.0,
                                           help="Rewrite an unchanged status row this often, keeping "
                                                "last_success_at fresh (0: only on change)."),
    expires: int = typer.Option(None, "--expires", min=1, max=86400,
                                help="Ask for this many seconds instead of each phone's registration_expire_time "
                                     "(labs and tests; the registrar may still raise it to its minimum)."),
    ca_file: Path = typer.Option(None, "--ca-file", exists=True, dir_okay=False, readable=True,
                                 help="CA bundle (PEM) to verify TLS registrars with, instead of the system's."),
    nameserver: list[str] = typer.Option(None, "--nameserver", help="DNS server HOST[:PORT] (repeatable)."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="Processes to spread the fleet over (on SQLite each keeps the phones a stable "
                                     "hash of their id gives it; on PostgreSQL they divide the fleet like monitors on "
                                     "other machines; metrics are served summed). One process registers a few "
                                     "thousand phones per second on one core."),
    lease: float = typer.Option(10.0, "--lease", min=1.0, max=3600.0,
                                help="Seconds a monitor's hold on its phones lasts without a heartbeat (renewed "
                                     "every third of it). Monitors sharing one PostgreSQL take over a stopped "
                                     "or killed monitor's phones within about twice this."),
    shard: str = typer.Option(None, "--shard", hidden=True,
                              help="K/N: run as worker K (from 0) of N under --workers (JSON lines on stdout)."),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption,
):
    """Keep every phone of the store (or --account / --phone) registered, record each phone's state in
    the store, serve metrics, follow phones created, changed or deleted; un-register on SIGTERM."""
    from sipphones.monitor.fleet import FleetShare
    from sipphones.monitor.reload import PhoneSelection
    from sipphones.monitor.service import FleetMonitor, MonitorOptions

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise typer.BadParameter("use debug, info, warning or error", param_hint="--log-level")
    # Our own loggers at the level asked for; libraries (SQLAlchemy, alembic, asyncio) only warn.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("sipphones").setLevel(level)
    from prometheus_client import disable_created_metrics
    disable_created_metrics()  # no *_created series: they double the scrape for no alerting value
    if retry_max < retry_interval:
        raise typer.BadParameter("must be at least --retry-interval", param_hint="--retry-max")
    settings = settings_from(database_url, data_dir)
    shared = settings.resolved_database_url().startswith("postgresql")
    # On PostgreSQL every process is a member of the fleet (``monitor.fleet``): the store divides the
    # phones, including between the workers of --workers, so a worker takes no hash shard there.
    shard_index, shards = _parse_shard(shard) if shard and not shared else (0, 1)
    options = MonitorOptions(
        selection=PhoneSelection.of(account or (), phone or (), shard=shard_index, shards=shards),
        reload_interval=reload_interval,
        server_budget=timeout, jitter=jitter, probe_interval=probe_interval, retry_base=retry_interval,
        retry_max=retry_max, start_rate=start_rate, stop_timeout=stop_timeout, status_heartbeat=status_heartbeat,
        metrics_host=metrics_host, metrics_port=metrics_port, ca_file=str(ca_file) if ca_file else None,
        nameservers=nameservers_option(nameserver), expires=expires,
        tune_gc=True,  # this process exists for the fleet: see sipphones.sipio.gc_policy
    )

    if workers > 1 and shard is None:
        def worker_argv(k: int) -> list[str]:
            argv = [sys.executable, "-m", "sipphones", "monitor", "--shard", f"{k}/{workers}",
                    "--metrics-host", "127.0.0.1", "--metrics-port", "0",
                    "--reload-interval", repr(reload_interval), "--timeout", repr(timeout), "--jitter", repr(jitter),
                    "--probe-interval", repr(probe_interval), "--retry-interval", repr(retry_interval),
                    "--retry-max", repr(retry_max), "--start-rate", repr(start_rate / workers),
                    "--stop-timeout", repr(stop_timeout), "--status-heartbeat", repr(status_heartbeat),
                    "--lease", repr(lease), "--log-level", log_level]
            for a in account or ():
                argv += ["--account", a]
            for p in phone or ():
                argv += ["--phone", p]
            if expires is not None:
                argv += ["--expires", str(expires)]
            if ca_file is not None:
                argv += ["--ca-file", str(ca_file)]
            for n in nameserver or ():
                argv += ["--nameserver", n]
            return argv

        # The store travels in the environment, not in argv: a database URL may hold a password,
        # and every local user can read a process's arguments.
        env = dict(os.environ, SIPPHONES_DATA_DIR=str(settings.data_dir))
        if settings.database_url:
            env["SIPPHONES_DATABASE_URL"] = settings.database_url
        with _sole_monitor(settings, shared):
            run(lambda: _supervise(workers, worker_argv, env, options, settings))
        return

    async def go() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        _on_stop_signals(loop, stop)
        if shard is not None:
            _watch_supervisor(loop, stop)

        async with open_store(settings) as repo:
            await _check_selection(repo, options.selection)
            share = None
            if shared or shard is None:  # a SQLite worker keeps its hash shard, no claims
                share = FleetShare(repo, lease=lease)
                if not shared:  # the file lock proves every other monitor of this file gone
                    await repo.fleet_forget_others(share.id)
            fleet = FleetMonitor(repo, options, fleet=share)
            try:
                try:
                    await fleet.start()
                except OSError as e:
                    if fleet.metrics_server is None and options.metrics_port is not None:
                        raise _metrics_unavailable(metrics_host, metrics_port, e) from None
                    raise
                if shard is not None:
                    _say(json.dumps({"ready": True, "phones": len(fleet.versions),
                                     "metrics_port": fleet.metrics_server.port if fleet.metrics_server else None}))
                else:
                    where = _metrics_where(metrics_host, fleet.metrics_server)
                    _say(f"monitoring {len(fleet.versions)} phone(s){where}")
                await fleet.run(stop)
            finally:
                await fleet.stop()
            done, failed = fleet.unregistered_on_stop[True], fleet.unregistered_on_stop[False]
            if shard is not None:
                _say(json.dumps({"stopped": True, "removed": done, "failed": failed}))
            else:
                _say(_stopped_line(done, failed))

    with _sole_monitor(settings, shared or shard is not None):
        run(go)


@contextlib.contextmanager
def _sole_monitor(settings, exempt: bool) -> Iterator[None]:
    """On SQLite: hold an exclusive lock on ``<file>.monitor.lock`` while monitoring, so that a
    second monitor of the same file is refused with a sentence (the lock dies with the process,
    SIGKILL included). ``exempt``: PostgreSQL (monitors share the fleet) or a supervised worker."""
    from sipphones.storage.database import sqlite_file

    path = None if exempt else sqlite_file(settings.resolved_database_url())
    if path is None:
        yield
        return
    lock_path = path + ".monitor.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        fail(f"cannot open the monitor lock {lock_path}: {e.strerror}")
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail(f"another sipphones monitor already keeps the phones of {path}: on SQLite only one "
                           "monitor may run per database file (stop it first, use --workers N for more "
                           "processes, or PostgreSQL for monitors that share a fleet)")
        yield
    finally:
        os.close(fd)  # releases the lock


def _parse_shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise typer.BadParameter("use K/N with 0 <= K < N", param_hint="--shard")
    return index, count


def _on_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """The first SIGTERM/SIGINT sets ``stop``; a second one exits at once with 130."""
    signals = {"count": 0}

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second %s: exiting without waiting for un-REGISTERs", signal.Signals(signum).name)
            os._exit(130)
        log.info("%s: un-registering every phone", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def _watch_supervisor(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """A worker's stdin is a pipe from its supervisor: end of file means the supervisor is gone
    (killed, crashed), so the worker un-registers its phones and exits instead of living on."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            if not stop.is_set():
                log.warning("the supervisor is gone: un-registering every phone")
                stop.set()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)


async def _check_selection(repo, selection) -> None:
    for acc in selection.accounts:
        if await repo.get_account(acc) is None:
            raise CliError(f"no account with id {acc}")
    for pid in selection.phones:
        if await repo.find_phone(pid) is None:
            raise CliError(f"no SIP phone with id {pid}")


async def _supervise(n: int, worker_argv, env: dict[str, str], options, settings) -> None:
    """``--workers N``: the supervisor's life (see :mod:`sipphones.monitor.workers`)."""
    from sipphones.monitor.metrics import MetricsServer
    from sipphones.monitor.workers import Supervisor, WorkerFailed, merged_registry

    async with open_store(settings) as repo:
        await _check_selection(repo, options.selection)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _on_stop_signals(loop, stop)
    supervisor = Supervisor(n, worker_argv, env=env, stop_timeout=options.stop_timeout + 15.0)
    server = None
    if options.metrics_port is not None:
        try:
            server = MetricsServer(merged_registry(supervisor.metrics_ports), options.metrics_host,
                                   options.metrics_port)
        except OSError as e:
            raise _metrics_unavailable(options.metrics_host, options.metrics_port, e) from None
    try:
        start = asyncio.ensure_future(supervisor.start())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            try:
                start.result()
            except WorkerFailed as e:
                raise CliError(f"{e}; see its error above") from None
            where = _metrics_where(options.metrics_host, server)
            _say(f"monitoring {supervisor.phones} phone(s) in {n} worker processes{where}")
            await stopped
        else:
            start.cancel()
        removed, failed = await supervisor.stop()
        _say(_stopped_line(removed, failed))
    finally:
        if server is not None:
            server.close()


def _metrics_unavailable(host: str, port: int, error: OSError) -> CliError:
    return CliError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}")


def _metrics_where(host: str, server) -> str:
    """``; metrics on http://...`` for the line that says monitoring started (empty: no server)."""
    return f"; metrics on http://{_url_host(host)}:{server.port}/metrics" if server is not None else ""


def _stopped_line(removed: int, failed: int) -> str:
    return f"stopped; {removed} binding(s) removed" + (f", {failed} un-REGISTER(s) failed" if failed else "")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
