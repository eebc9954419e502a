"""Importing a phone CSV through the API client (our service or Zoom's), and exporting one.

An import reads the file twice and never holds its rows:

1. the account's phones are listed once (page size 300), keeping per phone only its email ->
   (id, a digest of its fields, a digest of its password); the users likewise (their emails);
2. **validate and plan**: every row is checked with the domain's rules (the API's messages)
   and sorted into create / update / unchanged. Any invalid row: nothing is written, every
   error is returned (line, column, message). ``dry_run`` stops here. The emails seen (a repeat
   is an error) and the owning users to create are kept on disk (``scratch``), so memory does
   not grow with the file; what does grow is the map of the account's existing phones (bounded
   by the account, ~300 bytes a phone) and its users' emails;
3. with ``create_users``, the missing owning users are created (email only);
4. **apply**: the file is read again and each create or update is sent, ``concurrency``
   requests in flight. Creates use the current ``POST /sip_phones/phones`` (the whole phone in
   one request), or the legacy ``POST /sip_phones`` for an address whose platform suffix only
   the legacy set accepts (``.mac``, ``.win``...; a display number then follows in a PATCH).
   Updates use the current ``PATCH /sip_phones/phones/{id}`` with the file's columns (absent
   columns, and an empty password, stay as they are).

Idempotent: a row equal to its phone is not sent, and rows are matched by email, so a run
stopped half-way (even killed) and started again completes without duplicates. A 429 is waited
out (the client's retries, then more rounds here) and the row sent again, never dropped.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from sipphones.client import (
    AsyncSipPhonesClient, AuthenticationError, ConfigurationError, RateLimitError, RetryEvent, SipPhonesError,
    TransportError,
    ZoomAPIError,
)
from sipphones.phones import rules
from sipphones.provisioning.csvfile import (
    COLUMNS, SLOT_SUFFIX, CsvFileError, CsvWriter, Header, Row, RowError, email_key, fields_digest, flat_phone,
    owner_email, parse_row, password_digest, read_header, read_rows,
)
from sipphones.provisioning.scratch import Scratch

MAX_ERRORS = 1000            # errors listed; beyond, only counted
MAX_CONCURRENCY = 64          # the client keeps 64 connections open
# On httpx's own pool an import ran 519 rows/s with 8 in flight and 202 with 32 (encode/httpx#3215);
# the client now sends through aiohttp's pool, where 32 in flight beats 8 (bench/client_transport.py,
# bench/README.md "CSV import").
DEFAULT_CONCURRENCY = 32
MAX_RATE_ROUNDS = 120        # rate-limited rounds of one request (each after the client's own retries)
MAX_RATE_WAIT = 60.0         # a longer Retry-After (a daily quota) stops the import
PAGE_SIZE = 300
PROGRESS_EVERY = 100         # rows between two progress reports
CURRENT_SERVER_KEYS = {1: "server", 2: "server_2", 3: "server_3"}

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"


class ImportAborted(Exception):
    """The import cannot go on (credentials refused, a daily quota spent...): one sentence."""


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    users_created: int = 0
    rate_limit_waits: int = 0
    dry_run: bool = False
    valid: bool = True                 # False: the file was refused, nothing written
    aborted: str = ""                  # why the apply step stopped early
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0

    def error(self, e: RowError) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(e)

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "failed": self.failed,
                "errors": [e.as_dict() for e in self.errors], "errors_total": self.errors_total,
                "users_created": self.users_created, "dry_run": self.dry_run,
                "rate_limit_waits": self.rate_limit_waits}


@dataclass(frozen=True)
class Planned:
    """What one row does (given to ``on_plan``)."""

    line: int
    action: str
    user_email: str
    phone_id: str = ""


@dataclass(frozen=True)
class Stored:
    phone_id: str
    fields: bytes
    password: bytes


@dataclass
class _Job:
    line: int
    action: str
    row: Row
    phone_id: str = ""


class Importer:
    """One import of the CSV file at ``path``. ``on_progress(phase, done, total)``: ``phase``
    is ``"validate"`` (total None) or ``"apply"``; ``on_plan(Planned)``: each row's action, as
    the file is validated. ``note_retry`` is meant as the client's ``on_retry``."""

    def __init__(self, path: str, *, dry_run: bool = False, create_users: bool = False,
                 concurrency: int = DEFAULT_CONCURRENCY,
                 on_progress: Callable[[str, int, int | None], Any] | None = None,
                 on_plan: Callable[[Planned], Any] | None = None):
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be from 1 to {MAX_CONCURRENCY}, not {concurrency}")
        self.path = path
        self.dry_run = dry_run
        self.create_users = create_users
        self.concurrency = concurrency
        self.on_progress = on_progress or (lambda phase, done, total: None)
        self.on_plan = on_plan
        self.result = ImportResult(dry_run=dry_run)
        self._stored: dict[str, Stored] = {}
        self._users: set[str] | None = None
        self._fields: tuple[str, ...] = ()
        self._invalid_lines = 0
        self._scratch: Scratch | None = None   # the file's emails and the users to create, on disk

    def note_retry(self, event: RetryEvent) -> None:
        if event.reason == "429":
            self.result.rate_limit_waits += 1

    async def run(self, client: AsyncSipPhonesClient) -> ImportResult:
        """Validate the whole file, then (unless invalid or a dry run) apply it. Raises
        ``ImportAborted`` when listing fails; an apply that has to stop says why in ``aborted``."""
        self._scratch = Scratch()
        try:
            return await self._run(client)
        finally:
            self._scratch.close()
            self._scratch = None

    @property
    def scratch(self) -> Scratch:
        if self._scratch is None:
            raise RuntimeError("the import is not running")
        return self._scratch

    async def _run(self, client: AsyncSipPhonesClient) -> ImportResult:
        result = self.result
        try:
            header = read_header(self.path)
        except CsvFileError as e:
            return self._refused(e)
        try:
            await self._load_phones(client, header)
            await self._load_users(client)
        except RateLimitError as e:
            raise ImportAborted(f"cannot list the account's phones and users: {_rate_limited(e)}") from None
        except (ZoomAPIError, TransportError, ConfigurationError) as e:
            raise ImportAborted(f"cannot list the account's phones and users: {_describe(e)}") from None
        planned = {CREATE: 0, UPDATE: 0, UNCHANGED: 0}
        try:
            self._validate(header, planned)
        except CsvFileError as e:
            return self._refused(e)
        if result.errors_total:
            result.valid = False
            result.failed = self._invalid_lines
            return result
        if self.dry_run:
            result.created, result.updated, result.unchanged = planned[CREATE], planned[UPDATE], planned[UNCHANGED]
            result.users_created = self.scratch.owner_count()
            return result
        owners = self.scratch.owner_count()
        if owners:
            await self._create_users(client, owners)
            if result.aborted:
                return result
        await self._apply(client, header, planned[CREATE] + planned[UPDATE])
        return result

    def _refused(self, e: CsvFileError) -> ImportResult:
        self.result.valid = False
        self.result.failed = max(self.result.failed, 1)
        self.result.error(RowError(e.line, e.column, e.message))
        return self.result

    # --- what is there ------------------------------------------------------------------

    async def _load_phones(self, client: AsyncSipPhonesClient, header: Header) -> None:
        fields = header.fields
        stored = self._stored
        async for phone in client.iter_phones(page_size=PAGE_SIZE):
            cells = flat_phone(phone)
            stored[email_key(cells["user_email"])] = Stored(
                cells["phone_id"], fields_digest(cells, fields), password_digest(cells["password"]))

    async def _load_users(self, client: AsyncSipPhonesClient) -> None:
        try:
            self._users = {str(u.get("email", "")).lower() async for u in client.iter_users(page_size=PAGE_SIZE)}
        except ZoomAPIError as e:
            if self.create_users or e.status_code not in (400, 403):
                raise
            self._users = None  # no right to list users: the API says which are missing, row by row

    def _user_missing(self, email: str) -> str | None:
        """The owning user to create for ``email``, or None when it exists (or cannot be known)."""
        if self._users is None:
            return None
        owner = owner_email(email).lower()
        if email.lower() in self._users or owner in self._users:
            return None
        return owner

    # --- validate and plan --------------------------------------------------------------

    def _classify(self, row: Row) -> tuple[str, str]:
        stored = self._stored.get(row.key)
        if stored is None:
            return CREATE, ""
        same = fields_digest(row.values, self._fields) == stored.fields
        if same and (row.password == "" or password_digest(row.password) == stored.password):
            return UNCHANGED, stored.phone_id
        return UPDATE, stored.phone_id

    def _rows(self, header: Header) -> Iterator[tuple[int, Row | list[RowError]]]:
        for line, cells in read_rows(self.path, header):
            if isinstance(cells, RowError):
                yield line, [cells]
                continue
            new = email_key(cells.get("user_email", "")) not in self._stored
            yield line, parse_row(line, cells, new=new)

    def _validate(self, header: Header, planned: dict[str, int]) -> None:
        """Pass 1: every row checked, errors recorded, actions counted."""
        self._fields = header.fields
        self._invalid_lines = 0
        done = 0
        for line, row in self._rows(header):
            done += 1
            if done % PROGRESS_EVERY == 0:
                self.on_progress("validate", done, None)
            if isinstance(row, list):
                self._invalid_lines += 1
                for e in row:
                    self.result.error(e)
                continue
            if not self.scratch.first_time(row.key):
                self._invalid_lines += 1
                self.result.error(RowError(line, "user_email", "The same user_email as an earlier line: each "
                                                               "address is one phone."))
                continue
            owner = self._user_missing(row.user_email)
            if owner is not None:
                if not self.create_users:
                    self._invalid_lines += 1
                    self.result.error(RowError(line, "user_email", f"User {row.user_email} not exist or not belong "
                                                                   "to this account. (--create-users creates it)"))
                    continue
                self.scratch.add_owner(owner)
            action, phone_id = self._classify(row)
            planned[action] += 1
            if self.on_plan is not None:
                self.on_plan(Planned(line, action, row.user_email, phone_id))
        self.on_progress("validate", done, done)

    # --- apply --------------------------------------------------------------------------

    async def _create_users(self, client: AsyncSipPhonesClient, count: int) -> None:
        pending = self.scratch.owners()

        async def worker() -> None:
            for email in pending:
                if self.result.aborted:
                    return
                try:
                    await self._rate_limited(lambda: client.create_user(email))
                    self.result.users_created += 1
                except ImportAborted as e:
                    self.result.aborted = str(e)
                except ZoomAPIError as e:
                    if e.code != 1005:  # 1005: it exists already (another run, another admin)
                        self.result.aborted = f"user {email} not created: {e.describe()}"
                except TransportError as e:
                    self.result.aborted = f"user {email} not created: no answer from the service: {e}"

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, count))))
        if self.result.aborted:
            self.result.error(RowError(0, "", self.result.aborted))

    async def _apply(self, client: AsyncSipPhonesClient, header: Header, total: int) -> None:
        queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=self.concurrency * 2)
        done = 0
        self.on_progress("apply", 0, total)

        async def worker() -> None:
            nonlocal done
            while (job := await queue.get()) is not None:
                if not self.result.aborted:
                    await self._send(client, job)
                done += 1
                if done % PROGRESS_EVERY == 0 or done == total:
                    self.on_progress("apply", done, total)

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            for line, row in self._rows(header):
                if self.result.aborted:
                    break
                if isinstance(row, list):  # the file changed since it was validated
                    self.result.failed += 1
                    for e in row:
                        self.result.error(e)
                    continue
                action, phone_id = self._classify(row)
                if action == UNCHANGED:
                    self.result.unchanged += 1
                    continue
                await queue.put(_Job(line, action, row, phone_id))
        except CsvFileError as e:
            self.result.aborted = e.message
            self.result.error(RowError(e.line, e.column, e.message))
        finally:
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)

    async def _send(self, client: AsyncSipPhonesClient, job: _Job) -> None:
        values = job.row.values
        try:
            if job.action == UPDATE:
                await self._rate_limited(lambda: client.update_phone(job.phone_id, current_body(values, new=False)))
                self.result.updated += 1
                return
            _, suffix = rules.split_email(job.row.user_email, rules.LEGACY_SUFFIXES)
            if not suffix or suffix in rules.CURRENT_SUFFIXES:
                await self._rate_limited(lambda: client.create_phone(current_body(values, new=True)))
            else:  # only the legacy set takes this platform suffix
                phone = await self._rate_limited(lambda: client.legacy_create_phone(legacy_body(values)))
                if values.get("display_number"):
                    await self._rate_limited(lambda: client.update_phone(
                        phone["id"], {"display_number": values["display_number"]}))
            self.result.created += 1
        except ImportAborted as e:
            if not self.result.aborted:
                self.result.aborted = str(e)
                self.result.error(RowError(job.line, "", str(e)))
            self.result.failed += 1
        except ZoomAPIError as e:
            self.result.failed += 1
            if e.errors:
                for fe in e.errors:
                    self.result.error(RowError(job.line, csv_column(fe.field), fe.message))
            else:
                self.result.error(RowError(job.line, "", e.describe()))
        except TransportError as e:
            self.result.failed += 1
            note = " (it may have been carried out: run the import again)" if e.maybe_delivered else ""
            self.result.error(RowError(job.line, "", f"no answer from the service: {e}{note}"))
        except SipPhonesError as e:  # e.g. a page walk the client refused
            self.result.failed += 1
            self.result.error(RowError(job.line, "", str(e)))

    async def _rate_limited(self, call: Callable[[], Any]) -> Any:
        """``call()``, again after each 429 the client gave up on (waiting as told), at most
        ``MAX_RATE_ROUNDS`` times; a wait over ``MAX_RATE_WAIT`` (a daily quota) aborts."""
        for _ in range(MAX_RATE_ROUNDS):
            try:
                return await call()
            except AuthenticationError as e:
                raise ImportAborted(f"the credentials were refused: {e.describe()}") from None
            except RateLimitError as e:
                if e.retry_after is not None and e.retry_after > MAX_RATE_WAIT:
                    raise ImportAborted(_rate_limited(e)) from None
                self.result.rate_limit_waits += 1
                await asyncio.sleep((e.retry_after or 1.0) + random.uniform(0, 0.5))
        raise ImportAborted(f"still rate limited after {MAX_RATE_ROUNDS} rounds of waiting")


def _rate_limited(e: RateLimitError) -> str:
    wait = f" (the service asks to wait {e.retry_after:.0f} s)" if e.retry_after is not None else ""
    return f"rate limited: {e.describe()}{wait}"


def _describe(e: Exception) -> str:
    return e.describe() if isinstance(e, ZoomAPIError) else str(e)


def csv_column(api_field: str) -> str:
    """A field as the API names it (``server_2.register_server``) as the CSV column."""
    for slot, key in CURRENT_SERVER_KEYS.items():
        if api_field.startswith(key + "."):
            return api_field[len(key) + 1:] + SLOT_SUFFIX[slot]
    return api_field


# --- request bodies ----------------------------------------------------------------------------

_SCALARS = ("user_name", "authorization_name", "password", "domain", "voice_mail", "display_number")


def current_body(values: dict[str, str], *, new: bool) -> dict[str, Any]:
    """The current-set body of a row: only the columns the file has; an empty password is left
    out (kept); an emptied server set 2 or 3 is removed."""
    body: dict[str, Any] = {"user_email": values["user_email"]} if new else {}
    for name in _SCALARS:
        if name in values and not (name == "password" and values[name] == ""):
            body[name] = values[name]
    if "registration_expire_time" in values:
        body["registration_expire_time"] = int(values["registration_expire_time"])
    for slot, key in CURRENT_SERVER_KEYS.items():
        n = SLOT_SUFFIX[slot]
        server = {f: values[f + n] for f in ("register_server", "proxy_server", "transport_protocol") if f + n in values}
        if not server:
            continue
        if server.get("register_server") == "":
            if new:
                continue
            server = {"register_server": "", "proxy_server": ""}  # removes the set
        elif server.get("transport_protocol") == "":
            del server["transport_protocol"]
        body[key] = server
    return body


def legacy_body(values: dict[str, str]) -> dict[str, Any]:
    """The legacy create body of a row (the seed's required fields always present)."""
    body: dict[str, Any] = {"proxy_server": "", "voice_mail": ""}
    for name in COLUMNS:
        if name in values and name != "display_number" and values[name] != "":
            body[name] = values[name]
    if "proxy_server" in values:
        body["proxy_server"] = values["proxy_server"]
    if "voice_mail" in values:
        body["voice_mail"] = values["voice_mail"]
    if "registration_expire_time" in values:
        body["registration_expire_time"] = int(values["registration_expire_time"])
    return body


# --- export --------------------------------------------------------------------------------------

async def export_phones(client: AsyncSipPhonesClient, writer: CsvWriter,
                        on_progress: Callable[[int], Any] | None = None) -> int:
    """Every phone of the account (the current list, which carries ``display_number``) into
    ``writer``; returns how many."""
    count = 0
    async for phone in client.iter_phones(page_size=PAGE_SIZE):
        writer.write(phone)
        count += 1
        if on_progress is not None and count % PAGE_SIZE == 0:
            on_progress(count)
    return count
