"""What an import must remember about the rows of its file, kept on disk, not in memory: the
emails seen so far (a repeated email is an error) and the owning users to create. With these in
a private temporary SQLite file (the standard library's sqlite3, a page cache of a few MiB), the
importer's memory does not grow with the file: 100,000 rows held in Python sets cost ~18 MiB
(a third of the importer's whole footprint); here they cost disk pages.

The file lives in a fresh directory only its owner can open (``tempfile.mkdtemp``: mode 0700)
and is removed by ``close``. It holds emails (addresses, not secrets) and 64-bit digests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from typing import Iterator

CACHE_KIB = 4096   # SQLite's page cache for the file (its memory bound)
FETCH = 500        # owners read at a time


def email_digest(key: str) -> int:
    """A 64-bit digest of a normalised email (collisions: ~1 in 10^9 for a million rows)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), signed=True)


class Scratch:
    """The on-disk sets of one import; ``close()`` removes them."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="sipphones-import-")
        self._db = sqlite3.connect(os.path.join(self._dir, "rows.db"), isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}", "temp_store=FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE seen (digest INTEGER PRIMARY KEY)")
        self._db.execute("CREATE TABLE owners (email TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction for the whole import: no commit per row

    def first_time(self, key: str) -> bool:
        """Records the email ``key``; False when it was recorded before."""
        try:
            self._db.execute("INSERT INTO seen VALUES (?)", (email_digest(key),))
        except sqlite3.IntegrityError:
            return False
        return True

    def add_owner(self, email: str) -> None:
        """Records a user to create (once, however many rows name it)."""
        self._db.execute("INSERT OR IGNORE INTO owners VALUES (?)", (email,))

    def owner_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM owners").fetchone()[0])

    def owners(self) -> Iterator[str]:
        """The users to create, in email order, read ``FETCH`` at a time."""
        cursor = self._db.execute("SELECT email FROM owners ORDER BY email")
        while rows := cursor.fetchmany(FETCH):
            for (email,) in rows:
                yield email

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
