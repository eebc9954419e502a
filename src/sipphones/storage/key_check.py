"""Does this process's master key open the SIP passwords already in the store?

Every instance of a deployment must hold the same master key (``storage.keys``): the SIP passwords
one encrypts are read by all, and so are the access and page tokens one signs. Instances on
separate hosts that each created their own ``secret.key`` would store passwords the others cannot
read. ``serve`` on PostgreSQL (the shared store) therefore decrypts one stored password before it
starts, and warns loudly (stderr, before it listens) when its key does not open it.
"""

from __future__ import annotations

MISMATCH = ("the master key does not decrypt the SIP passwords stored in this database: every "
            "instance on one database must share one key (set the same SIPPHONES_SECRET_KEY on each, "
            "or copy one data directory's secret.key to the others)")


def key_opens_store(url: str, master: bytes) -> bool:
    """True when the store holds no phone, or the key decrypts the first one's password."""
    from sqlalchemy import text

    from sipphones.storage.crypto import PasswordCipher
    from sipphones.storage.database import sync_engine
    from sipphones.storage.keys import Keys

    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id, password_enc FROM sip_phones ORDER BY id LIMIT 1")).first()
    finally:
        engine.dispose()
    if row is None:
        return True
    try:
        PasswordCipher(Keys.derive(master).sip_password).decrypt(bytes(row[1]), context=row[0])
    except ValueError:
        return False
    return True
