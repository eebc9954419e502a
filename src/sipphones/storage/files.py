"""The service's own files are private to the user running it: directories 0700, files 0600.

The master key and the SQLite store (e-mails, SIP passwords encrypted with that key, hashes of
app secrets) must never be readable by another local user, whatever the umask. So:

- a directory the service creates (the data directory, a SQLite file's directory) is made 0700;
- a file it creates is created 0600 before anything is written into it (``os.open`` with
  ``O_CREAT | O_EXCL`` and the mode, or ``tempfile.mkstemp``); SQLite gives the ``-wal`` and
  ``-shm`` files of a database the mode of the database file, so they are 0600 too;
- a file of ours found readable or writable by others (made by an older version, or by hand)
  is made 0600 again, with a warning: such a file is ours alone by design;
- a directory found open to others is only warned about, never changed: the data directory or
  the directory of a SQLite file may be one the operator shares (``/srv``, a home directory), and
  the files in it are private all the same.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

log = logging.getLogger("sipphones.storage")


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) when it is missing, itself with mode 0700 whatever
    the umask; an existing directory is left as it is (see ``open_dir_warning``)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:  # made meanwhile by another process: as it is
        return
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode passed through the umask (which may take off our own bits)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 when it does not exist (True); False when it does."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken bits off 0600, never added any: exact now
    finally:
        os.close(fd)
    return True


def make_private(path: Path) -> None:
    """A file of ours that other users may read or write is made 0600, with a warning; a missing
    file, or one this user may not change (not its owner), is left alone (the latter with a
    warning)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & PRIVATE_FILE)
    except PermissionError:
        log.warning("%s is readable by other users (mode %04o) and cannot be changed by this user", path, mode)
        return
    log.warning("%s was readable by other users (mode %04o): now %04o", path, mode, mode & PRIVATE_FILE)


def open_dir_warning(path: Path) -> str | None:
    """A sentence when the directory ``path`` exists and other users may enter or list it."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    if not mode & 0o077:
        return None
    return (f"the directory {path} is open to other users (mode {mode:04o}); the service's files in it "
            f"are private (0600), but consider chmod 700 {path}")
