"""``sipphones check``: register each phone with each of its server sets, report, un-register.

Exit codes: 0 every checked phone registered on every configured server set; 3 at least one
phone failed somewhere (a dead backup counts: it is what the check is for); 1 the check could
not run (unknown phone or account, database error); 2 wrong usage.

``--json`` prints one stable document::

    {"ok": bool, "checked": int, "failed": int,
     "options": {"timeout": float, "ca_file": str|null, "concurrency": int, "failed_only": bool},
     "phones": [CheckReport.to_dict(), ...]}   # see sipphones.check.models

``--failed-only`` leaves the phones that registered everywhere out of the output (the table and
``phones``); the counts, the summary line and the exit code still cover every phone checked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

from sipphones.check.models import CheckReport, CheckResult
from sipphones.cli.runtime import (
    CliError, DatabaseOption, DataDirOption, JsonOption, fail, open_store, run, settings_from,
)
from sipphones.phones.models import SipPhone

__all__ = ["check", "parse_nameserver", "nameservers_option", "EXIT_PHONE_FAILED", "render_reports", "reports_document"]

EXIT_PHONE_FAILED = 3

_STYLE = {CheckResult.REGISTERED: "green", CheckResult.NOT_TRIED: "dim"}


def parse_nameserver(text: str) -> tuple[str, int]:
    """``127.0.0.53`` / ``127.0.0.53:5353`` / ``[::1]:53`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host or (port and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise CliError(f"invalid name server '{text}': use HOST or HOST:PORT (a port from 1 to 65535)")
    return host, int(port) if port else 53


def nameservers_option(values: list[str] | None) -> tuple[tuple[str, int], ...] | None:
    """The ``--nameserver`` values parsed; a bad one ends the command with one sentence."""
    if not values:
        return None
    try:
        return tuple(parse_nameserver(n) for n in values)
    except CliError as e:
        fail(str(e))
        raise


async def load_phones(repo, phone_ids: list[str], account: str | None, every: bool) -> list[SipPhone]:
    """The phones the operator named, in the order named (or the store's order for a scan)."""
    if account is not None and await repo.get_account(account) is None:
        raise CliError(f"no account with id {account}")
    if phone_ids:
        phones = []
        for pid in dict.fromkeys(phone_ids):
            phone = await repo.find_phone(pid)
            if phone is None or (account is not None and phone.account_id != account):
                where = f" in account {account}" if account is not None else ""
                raise CliError(f"no SIP phone with id {pid}{where}")
            phones.append(phone)
        return phones
    return [p async for p in repo.iter_phones(account if not every else None)]


def reports_document(reports: list[CheckReport], options: dict[str, Any], *,
                     failed_only: bool = False) -> dict[str, Any]:
    """The ``--json`` document; ``failed_only``: ``phones`` lists only the failed ones (the
    counts stay those of every phone checked)."""
    failed = sum(1 for r in reports if not r.ok)
    return {"ok": failed == 0, "checked": len(reports), "failed": failed, "options": options,
            "phones": [r.to_dict() for r in reports if not (failed_only and r.ok)]}


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} ms"


def _server_cells(s) -> tuple[str, str, str, str, str]:
    """(server as configured, address/transport used, SIP status, RTT, granted expiry)."""
    server = s.server if s.configured_transport == s.transport else f"{s.server} {s.configured_transport}"
    used = f"{s.address}/{s.transport}" if s.address else ""
    sip = str(s.sip_status) if s.sip_status is not None else ""
    expires = f"{s.granted_expires} s" if s.granted_expires is not None else ""
    return server, used, sip, _ms(s.rtt_ms), expires


def _detail(s) -> str:
    detail = s.detail or (s.reason if s.sip_status is not None and not s.ok else "")
    if s.ok and s.unregistered is False:
        detail = (detail + "; " if detail else "") + "un-REGISTER failed"
    return detail


def render_reports(reports: list[CheckReport], console: Console, *, failed_only: bool = False) -> None:
    """A table with one row per server set (a block per phone on narrow terminals and pipes),
    then a summary line. ``failed_only``: the phones that registered everywhere are left out of
    the table, not of the summary."""
    from rich.text import Text  # rich: imported by the commands that print with it, not by every start (serve)

    shown = [r for r in reports if not r.ok] if failed_only else reports
    if shown and console.width >= 110:
        _render_table(shown, console)
    elif shown:
        _render_lines(shown, console)
    failed = [r for r in reports if not r.ok]
    summary = f"{len(reports)} phone(s) checked: {len(reports) - len(failed)} ok, {len(failed)} failed"
    console.print(Text(summary, style="red" if failed else "green"))


def _render_table(reports: list[CheckReport], console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for name, kw in (("Phone", {"no_wrap": True}), ("Set", {"justify": "right"}), ("Server", {"overflow": "fold"}),
                     ("Used", {"no_wrap": True}), ("Result", {"no_wrap": True}), ("SIP", {"justify": "right"}),
                     ("RTT", {"justify": "right", "no_wrap": True}), ("Expires", {"justify": "right"}),
                     ("Detail", {"overflow": "fold"})):
        table.add_column(name, **kw)
    for report in reports:
        who = f"{report.phone_id}\n{report.user_name}@{report.domain}"
        if report.user_email:
            who += f"\n{report.user_email}"
        if report.error and not report.servers:
            table.add_row(who, "", "", "", Text("config_error", style="red"), "", "", "", report.error,
                          end_section=True)
            continue
        for i, s in enumerate(report.servers):
            server, used, sip, rtt, expires = _server_cells(s)
            last = i == len(report.servers) - 1 and not report.error
            table.add_row(who if i == 0 else "", str(s.slot), server, used,
                          Text(s.result.value, style=_STYLE.get(s.result, "red")), sip, rtt, expires, _detail(s),
                          end_section=last)
        if report.error and report.servers:
            table.add_row("", "", "", "", Text("incomplete", style="red"), "", "", "", report.error, end_section=True)
    console.print(table)


def _render_lines(reports: list[CheckReport], console: Console) -> None:
    from rich.text import Text

    for report in reports:
        owner = f"  ({report.user_email})" if report.user_email else ""
        console.print(Text.assemble((report.phone_id, "bold"), f"  {report.user_name}@{report.domain}{owner}"),
                      soft_wrap=True)
        if report.error and not report.servers:
            console.print(Text.assemble("  ", ("config_error", "red"), f"  {report.error}"))
        for s in report.servers:
            server, used, sip, rtt, expires = _server_cells(s)
            parts = [f"  set {s.slot}  {server}", f"-> {used}" if used else "", (s.result.value, _STYLE.get(s.result, "red")),
                     f"SIP {sip}" if sip else "", rtt, f"expires {expires}" if expires else "", _detail(s)]
            line = Text()
            for part in parts:
                if part:
                    line.append("  " if line else "")
                    line.append(*part) if isinstance(part, tuple) else line.append(part)
            console.print(line, soft_wrap=True)
        if report.error and report.servers:
            console.print(Text.assemble("  ", ("incomplete", "red"), f"  {report.error}"))


def check(
    phone_ids: list[str] = typer.Argument(None, metavar="PHONE_ID", help="Phone ids to check."),
    every: bool = typer.Option(False, "--all", help="Check every phone of the store."),
    account: str = typer.Option(None, "--account", help="Check every phone of this account (or only the named "
                                                        "phones, which must belong to it)."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds each server may take to register us, "
                                                                  "challenges and retries included, before it counts "
                                                                  "as a timeout (a hard bound; the un-REGISTER gets as "
                                                                  "long again)."),
    ca_file: Path = typer.Option(None, "--ca-file", exists=True, dir_okay=False, readable=True,
                                 help="CA bundle (PEM) to verify TLS registrars with, instead of the system's."),
    nameserver: list[str] = typer.Option(None, "--nameserver", help="DNS server HOST[:PORT] for SRV/NAPTR/A "
                                                                    "lookups (repeatable; default: the system's)."),
    concurrency: int = typer.Option(20, "--concurrency", min=1, max=1000, help="Phones checked at once."),
    failed_only: bool = typer.Option(False, "--failed-only", help="Show only the phones that failed (the summary "
                                                                  "and the exit code still cover every phone)."),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption,
):
    """Register each phone with each of its server sets, report the outcome, then un-register.

    Exit code 0 when every phone registered on every configured server set, 3 when any failed, 1 when the check could not run (unknown phone, database error).
    """  # noqa: E501 - one line: Typer keeps the docstring's line breaks in --help
    from sipphones.check.service import CheckOptions, CheckService

    ids = list(phone_ids or [])
    if not ids and not every and account is None:
        raise typer.BadParameter("name PHONE_IDs, or use --all or --account", param_hint="PHONE_ID")
    if every and (ids or account is not None):
        raise typer.BadParameter("--all checks every phone; do not combine it with PHONE_IDs or --account",
                                 param_hint="--all")
    options = CheckOptions(
        server_budget=timeout, ca_file=str(ca_file) if ca_file else None, concurrency=concurrency,
        nameservers=nameservers_option(nameserver),
    )

    async def go() -> list[CheckReport]:
        async with open_store(settings_from(database_url, data_dir)) as repo:
            phones = await load_phones(repo, ids, account, every)
        async with CheckService(options) as service:
            return await service.check_all(phones)

    reports = run(go)
    from rich.console import Console

    if as_json:
        doc = reports_document(reports, {"timeout": timeout, "ca_file": options.ca_file,
                                         "concurrency": concurrency, "failed_only": failed_only},
                               failed_only=failed_only)
        import json
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif reports:
        render_reports(reports, Console(), failed_only=failed_only)
    else:
        Console().print("no SIP phones to check")
    if any(not r.ok for r in reports):
        raise typer.Exit(EXIT_PHONE_FAILED)
