"""The buffered OS random source of the SIP engine, phone ids and password nonces (sipphones.entropy)."""

from __future__ import annotations

import os
import threading

from sipphones.entropy import BufferedSystemRandom


def test_values_never_repeat_across_refills_and_sizes():
    rng = BufferedSystemRandom(buffer_size=64)
    seen = {rng.randbytes(8) for _ in range(2000)}
    assert len(seen) == 2000                                  # 64-bit values: a repeat would be a bug
    assert all(len(rng.randbytes(n)) == n for n in (0, 1, 7, 63, 64, 65, 1000))
    floats = [rng.random() for _ in range(2000)]
    assert all(0.0 <= f < 1.0 for f in floats) and len(set(floats)) == 2000
    assert 0.4 < sum(floats) / len(floats) < 0.6
    assert all(0 <= rng.getrandbits(k) < 2 ** k for k in (1, 5, 8, 13, 64, 100) for _ in range(50))
    assert rng.getrandbits(0) == 0
    assert {rng.randrange(6) for _ in range(500)} == set(range(6))   # the Random API on top still works


def test_threads_never_share_bytes():
    rng = BufferedSystemRandom(buffer_size=256)
    out: list[list[bytes]] = [[] for _ in range(4)]

    def draw(k: int) -> None:
        out[k] = [rng.randbytes(8) for _ in range(5000)]
    threads = [threading.Thread(target=draw, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = [v for part in out for v in part]
    assert len(set(values)) == len(values) == 20000


def test_a_forked_child_does_not_repeat_its_parent():
    rng = BufferedSystemRandom()
    rng.randbytes(8)                                          # the buffer is filled before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                              # child: report its next value, exit at once
        os.write(w, rng.randbytes(16))
        os._exit(0)
    os.close(w)
    child = os.read(r, 16)
    os.close(r)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != rng.randbytes(16)


def test_phone_ids_and_password_nonces_of_a_forked_child_differ_from_its_parent():
    # The API's workers draw ids and AES-GCM nonces from the shared buffer: a child forked after
    # the parent filled it must not hand out the parent's next bytes (a repeated nonce under one
    # key would expose both passwords).
    from sipphones.entropy import random_bytes
    from sipphones.ids import new_id
    from sipphones.storage.crypto import PasswordCipher

    cipher = PasswordCipher(bytes(32))
    random_bytes(1)                                           # the shared buffer is filled before the fork
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
