"""The SIP phone CSV file: its columns, reading it row by row (streamed, never held whole),
turning a row into the phone it asks for (validated with the domain's own rules, so the
messages are the API's), and writing rows.

Layout: a header row naming the columns (any order; case and surrounding spaces ignored), then
one phone per row. Columns are the legacy API's field names (``COLUMNS``); ``phone_id`` (what
an export adds) is accepted and ignored: rows are matched by ``user_email``. UTF-8 with or
without a BOM; comma or semicolon separated (taken from the header row).

What a cell means (the row is the phone's whole wanted state, so export -> edit -> import
round-trips):

- an empty ``password`` keeps the stored password (a new phone needs one);
- an empty optional cell clears the field: ``voice_mail``, ``display_number``, ``proxy_server``;
  an empty ``register_server2``/``register_server3`` removes that server set (its proxy and
  transport cells must then be empty too); an empty ``transport_protocolN`` of a configured set
  is ``UDP``; an empty ``registration_expire_time`` is 60 (the default);
- a column left out of the file leaves that field as it is on existing phones (and gives the
  default on new ones).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass
from typing import IO, Any, Iterator, Mapping

from sipphones.errors import ValidationFailed
from sipphones.phones import fields, rules
from sipphones.phones.validation import validate_phone_fields

# The phone's fields, in the legacy API's naming, in the order an export writes them: the field
# table's CSV columns (``sipphones.phones.fields``).
COLUMNS: tuple[str, ...] = fields.csv_columns()
ID_COLUMN = "phone_id"
EXPORT_COLUMNS: tuple[str, ...] = (ID_COLUMN, *COLUMNS)
KNOWN_COLUMNS = frozenset(EXPORT_COLUMNS)
# What a new phone must have (the current create's required fields).
CREATE_REQUIRED = ("user_email", "user_name", "authorization_name", "password", "domain", "register_server")
SLOT_SUFFIX = {1: "", 2: "2", 3: "3"}
DELIMITERS = (",", ";")

MAX_HEADER_CHARS = 4096      # the header row
MAX_CELL_CHARS = 1024        # a cell (the longest field the API takes is 255)
MAX_ROWS = 10_000_000        # rows of one file
DEFAULT_EXPIRE = str(rules.EXPIRE_DEFAULT)
DIGEST_BYTES = 16


class CsvFileError(Exception):
    """The file cannot be read as a phone CSV at all (missing, not UTF-8, no header...): one
    sentence; ``line`` and ``column`` where known."""

    def __init__(self, message: str, line: int = 0, column: str = ""):
        self.line, self.column, self.message = line, column, message
        super().__init__(message)


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Header:
    columns: tuple[str, ...]     # as in the file, normalised (lower case, stripped)
    delimiter: str

    @property
    def fields(self) -> tuple[str, ...]:
        """The phone fields the file sets, in ``COLUMNS`` order (no ``phone_id``)."""
        present = set(self.columns)
        return tuple(c for c in COLUMNS if c in present)


def _open(path: str) -> IO[str]:
    try:
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise CsvFileError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CsvFileError(f"{path} is a directory, not a CSV file") from None
    except OSError as e:
        raise CsvFileError(f"cannot read {path}: {e.strerror or e}") from None


def _header_line(f: IO[str]) -> str:
    try:
        line = f.readline(MAX_HEADER_CHARS + 1)
    except UnicodeDecodeError:
        raise CsvFileError("the file is not UTF-8 text (save it as 'CSV UTF-8')", 1) from None
    if len(line) > MAX_HEADER_CHARS:
        raise CsvFileError(f"the header row is longer than {MAX_HEADER_CHARS} characters", 1)
    return line


def read_header(path: str) -> Header:
    """The header row: the columns and the delimiter. Raises ``CsvFileError`` naming an
    unknown or repeated column, or a missing ``user_email`` column."""
    with _open(path) as f:
        line = _header_line(f)
    if not line.strip():
        raise CsvFileError("the file has no header row: its first line must name the columns, "
                           f"e.g. {','.join(COLUMNS[:3])},...", 1)
    delimiter = ";" if line.count(";") > line.count(",") else ","
    cells = next(csv.reader([line], delimiter=delimiter))
    columns = tuple(c.strip().lower() for c in cells)
    seen: set[str] = set()
    for name in columns:
        if name not in KNOWN_COLUMNS:
            shown = name if len(name) <= 64 else name[:64] + "..."
            raise CsvFileError(f"unknown column {shown!r} in the header row (a header row is required; the "
                               f"columns are {', '.join(EXPORT_COLUMNS)})", 1, shown)
        if name in seen:
            raise CsvFileError(f"column {name!r} appears twice in the header row", 1, name)
        seen.add(name)
    if "user_email" not in seen:
        raise CsvFileError("the header row has no user_email column (rows are matched by it)", 1, "user_email")
    return Header(columns, delimiter)


def read_rows(path: str, header: Header) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """``(line, cells by column)`` for each data row, or ``(line, RowError)`` for a row with the
    wrong number of cells or an oversized cell. Blank lines are skipped. One row in memory at a
    time. Raises ``CsvFileError`` when the file stops being readable (not UTF-8, too many rows)."""
    width = len(header.columns)
    with _open(path) as f:
        reader = csv.reader(f, delimiter=header.delimiter, strict=False)
        count = 0
        try:
            next(reader)  # the header
            line = reader.line_num + 1
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                count += 1
                if count > MAX_ROWS:
                    raise CsvFileError(f"the file has more than {MAX_ROWS} rows: split it", start)
                if len(cells) != width:
                    yield start, RowError(start, "", f"{len(cells)} cells, but the header row names {width} columns")
                    continue
                long = next((c for c, v in zip(header.columns, cells) if len(v) > MAX_CELL_CHARS), None)
                if long is not None:
                    yield start, RowError(start, long, f"Must be at most {MAX_CELL_CHARS} characters.")
                    continue
                yield start, dict(zip(header.columns, cells))
        except UnicodeDecodeError:
            raise CsvFileError("the file is not UTF-8 text (save it as 'CSV UTF-8')", reader.line_num + 1) from None
        except csv.Error as e:
            raise CsvFileError(f"not a readable CSV file: {e}", reader.line_num) from None


# --- a row as a phone ------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """A valid row: the email, and the phone fields the file sets, normalised (see the module
    docstring): every value a string, ``registration_expire_time`` as its decimal digits, the
    password ``""`` when the row keeps the stored one."""

    line: int
    user_email: str
    values: dict[str, str]

    @property
    def key(self) -> str:
        return email_key(self.user_email)

    @property
    def password(self) -> str:
        return self.values.get("password", "")


def email_key(email: str) -> str:
    """What makes two phones the same: the exact address, suffix included, ignoring case (the
    service keeps one phone per address, compared without case)."""
    return email.lower()


def owner_email(email: str) -> str:
    """The user a phone belongs to: ``alice@x.com.pc`` -> ``alice@x.com``."""
    return rules.split_email(email, rules.LEGACY_SUFFIXES)[0]


def normalise(cells: dict[str, str]) -> dict[str, str]:
    """The cells as the wanted state (see the module docstring); nothing is checked here."""
    out = {name: cells[name] for name in COLUMNS if name in cells}
    for slot, n in SLOT_SUFFIX.items():
        reg, proxy, transport = f"register_server{n}", f"proxy_server{n}", f"transport_protocol{n}"
        if transport in out:
            if slot != 1 and reg in out and out[reg] == "":
                out[transport] = ""     # a removed set has no transport (a legacy list shows UDP there)
            elif out[transport] == "":
                out[transport] = "UDP"
    expire = out.get("registration_expire_time")
    if expire is not None:
        text = expire.strip()
        if text == "":
            out["registration_expire_time"] = DEFAULT_EXPIRE
        elif text.isdigit() and text.isascii():
            out["registration_expire_time"] = str(int(text))
    return out


def parse_row(line: int, cells: dict[str, str], *, new: bool) -> Row | list[RowError]:
    """The row as a ``Row``, or every problem with it: the API's rules and messages
    (``sipphones.phones.validation``), with the column names of the file. ``new``: the row
    creates a phone (so the create's required fields must be there)."""
    values = normalise(cells)
    errors: list[RowError] = []
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if name == "password" and value == "":
            continue  # keeps the stored password
        if name == "registration_expire_time":
            if not value.isdigit():
                errors.append(RowError(line, name, "Must be an integer number of minutes."))
                continue
            flat[name] = int(value)
        elif name.startswith("transport_protocol") and value == "":
            flat[name] = ""          # a removed set (accepted by the validation for sets 2 and 3)
        else:
            flat[name] = value
    if "user_email" not in values or values["user_email"] == "":
        errors.append(RowError(line, "user_email", "Must not be empty."))
    for slot, n in SLOT_SUFFIX.items():
        reg, proxy = f"register_server{n}", f"proxy_server{n}"
        if slot != 1 and values.get(reg, None) == "" and values.get(proxy):
            errors.append(RowError(line, reg, f"Required when {proxy} is given."))
    try:
        validate_phone_fields(flat, required=CREATE_REQUIRED if new else (), email_suffixes=rules.LEGACY_SUFFIXES)
    except ValidationFailed as e:
        seen = {(x.column, x.message) for x in errors}
        errors.extend(RowError(line, x.field, x.message) for x in e.errors if (x.field, x.message) not in seen)
    if errors:
        errors.sort(key=lambda x: COLUMNS.index(x.column) if x.column in COLUMNS else len(COLUMNS))
        return errors
    return Row(line, values["user_email"], values)


# --- comparing with a stored phone -----------------------------------------------------------

def flat_phone(phone: Mapping[str, Any]) -> dict[str, str]:
    """A phone of the current API shape (``GET /sip_phones/phones``) as CSV cells: every
    column of ``EXPORT_COLUMNS``, unused server sets empty."""
    out = {
        ID_COLUMN: str(phone.get("phone_id", "")),
        "user_email": str(phone.get("user_email", "")),
        "user_name": str(phone.get("user_name", "")),
        "authorization_name": str(phone.get("authorization_name", "")),
        "password": str(phone.get("password", "")),
        "domain": str(phone.get("domain", "")),
        "registration_expire_time": str(phone.get("registration_expire_time", DEFAULT_EXPIRE)),
        "voice_mail": str(phone.get("voice_mail") or ""),
        "display_number": str(phone.get("display_number") or ""),
    }
    for slot, key in ((1, "server"), (2, "server_2"), (3, "server_3")):
        n = SLOT_SUFFIX[slot]
        entry = phone.get(key)
        s: dict[str, Any] = entry if isinstance(entry, dict) else {}
        configured = bool(s.get("register_server"))
        out[f"register_server{n}"] = str(s.get("register_server") or "")
        out[f"proxy_server{n}"] = str(s.get("proxy_server") or "") if configured else ""
        out[f"transport_protocol{n}"] = str(s.get("transport_protocol") or "UDP") if configured else ""
    return out


def fields_digest(values: dict[str, str], fields: tuple[str, ...]) -> bytes:
    """A digest of ``fields`` (not the password: see ``password_digest``) of a phone's cells:
    equal digests, equal fields."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for name in fields:
        if name != "password" and name != "user_email":
            h.update(values.get(name, "").encode("utf-8", "surrogatepass"))
            h.update(b"\x00")  # never inside a valid value
    return h.digest()


def password_digest(password: str) -> bytes:
    return hashlib.blake2b(password.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


# --- writing ---------------------------------------------------------------------------------

class CsvWriter:
    """Rows of ``EXPORT_COLUMNS`` into a text stream, header first."""

    def __init__(self, out: IO[str], *, delimiter: str = ",", include_passwords: bool = False):
        if delimiter not in DELIMITERS:
            raise ValueError(f"the delimiter must be ',' or ';', not {delimiter!r}")
        self._writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        self._include_passwords = include_passwords
        self._writer.writerow(EXPORT_COLUMNS)

    def write(self, phone: Mapping[str, Any]) -> None:
        """One phone of the current API shape."""
        cells = flat_phone(phone)
        if not self._include_passwords:
            cells["password"] = ""
        self._writer.writerow([cells[c] for c in EXPORT_COLUMNS])


def open_private(path: str, *, bom: bool = False) -> IO[str]:
    """A new file for an export, readable by its owner only (it may hold SIP passwords),
    written under a temporary name: ``commit_private`` moves it into place."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    f = io.open(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="")
    return f


def commit_private(f: IO[str], path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    f.flush()
    os.fsync(f.fileno())
    f.close()
    os.replace(tmp, path)


def discard_private(f: IO[str], path: str) -> None:
    f.close()
    try:
        os.unlink(f"{path}.tmp-{os.getpid()}")
    except FileNotFoundError:
        pass
