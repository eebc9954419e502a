"""The deployment's master key and the sub-keys derived from it.

The master key is 32 random bytes, taken from ``SIPPHONES_SECRET_KEY`` (base64) or from
``<data_dir>/secret.key``, which is created on first use: atomically, and private from its first
byte (a temporary file created with mode 0600 in the data directory, made 0700 if missing, then
linked into place; an existing one readable by others is made 0600). Several server processes on
one data directory therefore share it. Sub-keys are derived with HKDF so that the SIP-password
cipher, the access-token signer and the page-token signer never share a key.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from sipphones.storage import files


@dataclass(frozen=True)
class Keys:
    sip_password: bytes
    access_token: bytes
    page_token: bytes
    console_session: bytes = b""   # signs the admin console's session cookie (sipphones.console)

    @classmethod
    def derive(cls, master: bytes) -> "Keys":
        # Imported here: ``serve``'s supervisor only loads (or makes) the master key.
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def sub(label: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sipphones", info=label).derive(master)

        return cls(sub(b"sip-password-aes-gcm"), sub(b"access-token-hs256"), sub(b"page-token-hmac"),
                   sub(b"console-session-hmac"))


class KeyError_(ValueError):
    pass


def load_master_key(secret_key: str, data_dir: Path) -> bytes:
    if secret_key:
        try:
            raw = base64.b64decode(secret_key, validate=True)
        except ValueError:
            raise KeyError_("SIPPHONES_SECRET_KEY is not valid base64") from None
        if len(raw) != 32:
            raise KeyError_("SIPPHONES_SECRET_KEY must be 32 bytes, base64-encoded")
        return raw
    path = data_dir / "secret.key"
    if not path.exists():
        _create_key_file(path)
    else:
        files.make_private(path)
    try:
        text = path.read_bytes()[:4096].decode("ascii").strip()
        raw = base64.b64decode(text, validate=True)
    except OSError as e:
        raise KeyError_(f"cannot read the key file {path}: {e.strerror or e}") from None
    except ValueError:  # not ASCII, not base64
        raise KeyError_(f"the key file {path} is corrupt: it must hold 32 bytes in base64 "
                        "(restore it from a backup; a new key cannot decrypt the stored SIP passwords)") from None
    if len(raw) != 32:
        raise KeyError_(f"the key file {path} is corrupt: it holds {len(raw)} bytes instead of 32 "
                        "(restore it from a backup; a new key cannot decrypt the stored SIP passwords)")
    return raw


def _create_key_file(path: Path) -> None:
    """Write a new random key into ``path`` unless another process did it first. The temporary
    file is created with mode 0600 (``mkstemp``: ``O_CREAT | O_EXCL``) before the key is written:
    no other user can open it at any moment, whatever the umask."""
    import tempfile  # only the first start makes a key

    files.private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".secret.key.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())  # whole on disk before it becomes the key
        try:
            os.link(tmp, path)  # atomic: the first process to create it wins
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
