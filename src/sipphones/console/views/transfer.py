"""CSV import (upload -> dry-run preview -> confirm -> summary) and export, through the import and
export of ``sipphones.provisioning`` run in process (``provisioning.local.LocalDirectory``)."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sipphones.auth.scopes import Operation
from sipphones.console.pages import Admin, admin_of, checked_form, refused, render, state, text, to_sign_in

# The import and export machinery (and the API client's exceptions it speaks, with httpx behind
# them) is imported by the views that use it, not when a server process starts.

MAX_UPLOAD_BYTES = 8 * 1024 * 1024   # a CSV file (about 40,000 phones)
UPLOAD_TTL = 3600                    # seconds an uploaded file waits for its confirmation
MAX_PLAN_ROWS = 500                  # rows of a preview listed one by one (all are counted)
TOKEN_CHARS = 43


def _uploads(request: Request) -> Path:
    folder = Path(state(request).settings.data_dir) / "console-imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _path(request: Request, admin: Admin, token: str) -> Path:
    """An upload's file: named by a digest of the account and the upload's random token, so that
    only the account that uploaded it can name it."""
    digest = hashlib.sha256(f"{admin.account.id}\x00{token}".encode()).hexdigest()[:40]
    return _uploads(request) / f"{digest}.csv"


def _sweep(folder: Path) -> None:
    cutoff = time.time() - UPLOAD_TTL
    for p in folder.glob("*.csv"):
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
        except FileNotFoundError:
            pass


def _directory(request: Request, admin: Admin):
    from sipphones.provisioning.local import LocalDirectory

    st = state(request)
    return LocalDirectory(admin.account, st.phones, st.accounts, st.repo,
                          may_list_users=admin.can(Operation.USERS_READ))


async def _admin(request: Request, *operations: Operation) -> Admin | Response:
    admin = await admin_of(request)
    if admin is None:
        return to_sign_in(request)
    if not all(admin.can(op) for op in operations):
        return refused(request, admin, "The app you signed in with may not do this (its scopes or role "
                                       "permissions do not allow it).")
    return admin


async def transfer_page(request: Request) -> Response:
    admin = await _admin(request, Operation.LIST)
    if isinstance(admin, Response):
        return admin
    return render(request, "transfer.html", admin, error="")


async def upload(request: Request) -> Response:
    """Keep the file, run the import as a dry run, show what it would do."""
    from sipphones.provisioning.importer import ImportAborted, Importer, Planned

    admin = await _admin(request, Operation.LIST, Operation.CREATE, Operation.UPDATE)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin, MAX_UPLOAD_BYTES + 64 * 1024)
    if isinstance(form, Response):
        return form
    create_users = form.get("create_users") == "1"
    if create_users and not admin.can(Operation.USERS_WRITE):
        return refused(request, admin, "The app you signed in with may not add users.")
    upload = form.get("csv")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(request, "transfer.html", admin, status=400, error="Choose a CSV file to import.")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return render(request, "transfer.html", admin, status=413,
                      error=f"The file is too large (at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB).")
    folder = _uploads(request)
    _sweep(folder)
    token = secrets.token_urlsafe(32)
    path = _path(request, admin, token)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    plan: list = []

    def on_plan(p: Planned) -> None:
        if len(plan) < MAX_PLAN_ROWS:
            plan.append(p)

    importer = Importer(str(path), dry_run=True, create_users=create_users, on_plan=on_plan)
    try:
        result = await importer.run(_directory(request, admin))
    except ImportAborted as e:
        path.unlink(missing_ok=True)
        return render(request, "transfer.html", admin, status=400, error=str(e))
    if not result.valid:
        path.unlink(missing_ok=True)
    return render(request, "import_preview.html", admin, status=200 if result.valid else 400, result=result,
                  plan=plan, token=token if result.valid else "", create_users=create_users,
                  filename=upload.filename[:200])


async def confirm(request: Request) -> Response:
    """Run the previewed import for real, show its summary."""
    from sipphones.provisioning.importer import ImportAborted, Importer

    admin = await _admin(request, Operation.LIST, Operation.CREATE, Operation.UPDATE)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    token = text(form, "upload", TOKEN_CHARS + 1)
    create_users = form.get("create_users") == "1"
    if create_users and not admin.can(Operation.USERS_WRITE):
        return refused(request, admin, "The app you signed in with may not add users.")
    path = _path(request, admin, token) if len(token) == TOKEN_CHARS else None
    if path is None or not path.is_file():
        return render(request, "transfer.html", admin, status=410,
                      error="This upload is no longer there (it expires after an hour): upload the file again.")
    try:
        result = await Importer(str(path), create_users=create_users).run(_directory(request, admin))
    except ImportAborted as e:
        return render(request, "transfer.html", admin, status=400, error=str(e))
    finally:
        path.unlink(missing_ok=True)
    return render(request, "import_done.html", admin, result=result)


async def export(request: Request) -> Response:
    """The account's phones as CSV (the import's columns); passwords only when asked for."""
    from sipphones.provisioning.csvfile import CsvWriter

    admin = await _admin(request, Operation.LIST)
    if isinstance(admin, Response):
        return admin
    with_passwords = request.query_params.get("passwords") == "1"
    directory = _directory(request, admin)

    async def rows():
        out = io.StringIO()
        writer = CsvWriter(out, include_passwords=with_passwords)
        count = 0
        async for phone in directory.iter_phones():
            writer.write(phone)
            count += 1
            if count % 300 == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="sip-phones.csv"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})
