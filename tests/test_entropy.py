"""Phone ids and password nonces come from the OS CSPRNG, fresh in every process (sipphones.ids,
sipphones.storage.crypto)."""

from __future__ import annotations

import os


def test_phone_ids_and_password_nonces_of_a_forked_child_differ_from_its_parent():
    # The API's workers are forked: a child must not hand out its parent's next id or nonce (a
    # repeated nonce under one key would expose both passwords).
    from sipphones.ids import new_id
    from sipphones.storage.crypto import PasswordCipher

    cipher = PasswordCipher(bytes(32))
    new_id(0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, new_id(0).encode() + cipher.encrypt("pw", context="p")[1:13])
        os._exit(0)
    os.close(w)
    child = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    parent = new_id(0).encode() + cipher.encrypt("pw", context="p")[1:13]
    assert len(child) == 22 + 12 and child[8:] != parent[8:]   # the first 8 characters are the clock
    assert child[22:] != parent[22:]
