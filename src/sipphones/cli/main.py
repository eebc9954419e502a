"""Entry point of the ``sipphones`` command."""

from __future__ import annotations

import sys

import typer

from sipphones import gc_pause

from sipphones.cli.admin import accounts_app, apps_app, users_app
from sipphones.cli.serve import serve
from sipphones.cli.check import check
from sipphones.cli.monitor import monitor
from sipphones.cli.phones import phones_app

app = typer.Typer(help="sipphones: a self-hosted, Zoom-compatible SIP Phone service.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.command("serve")(serve)
app.add_typer(accounts_app, name="accounts")
app.add_typer(apps_app, name="apps")
app.add_typer(users_app, name="users")
app.add_typer(phones_app, name="phones")
app.command("check")(check)
app.command("monitor")(monitor)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        gc_pause.pause()  # until the app has started: see sipphones.gc_pause
    app()
