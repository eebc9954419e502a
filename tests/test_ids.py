"""Identifiers: 22 characters of an ASCII-ordered alphabet, creation time first, so that a byte-wise
``ORDER BY id`` walks phones in creation order (keyset pagination relies on it)."""

from __future__ import annotations

from collections import Counter

from sipphones.ids import ALPHABET, new_id


def _encode(value: int, width: int) -> str:
    """The reference: ``value`` as ``width`` characters of ALPHABET, most significant first."""
    return "".join(ALPHABET[(value >> (6 * i)) & 63] for i in reversed(range(width)))


def _decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 64 + ALPHABET.index(ch)
    return value


def test_an_id_is_its_millisecond_clock_then_84_random_bits():
    for ms in (0, 1, 63, 64, 1_700_000_000_123, 2**48 - 1, 2**48 + 5):
        pid = new_id(ms)
        assert len(pid) == 22 and set(pid) <= set(ALPHABET)
        assert pid[:8] == _encode(ms & (2**48 - 1), 8)
        assert _decode(pid[:8]) == ms & (2**48 - 1)


def test_ids_sort_bytewise_in_creation_order():
    times = [0, 1, 2, 63, 64, 65, 4095, 4096, 10**12, 10**12 + 1, 2**47, 2**48 - 2, 2**48 - 1]
    ids = [new_id(ms) for ms in reversed(times) for _ in range(5)]
    assert [_decode(p[:8]) for p in sorted(ids, key=str.encode)] == sorted(t for t in times for _ in range(5))


def test_the_random_part_is_unique_and_uses_the_whole_alphabet_evenly():
    ids = [new_id(1_700_000_000_000) for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for position in (8, 14, 21):  # first, middle and last random character
        counts = Counter(pid[position] for pid in ids)
        assert set(counts) == set(ALPHABET)
        assert max(counts.values()) < 2 * min(counts.values())  # ~312 each; far from a skewed mapping


def test_ids_of_now_follow_the_clock():
    import time
    before = int(time.time() * 1000)
    pid = new_id()
    after = int(time.time() * 1000)
    assert before <= _decode(pid[:8]) <= after
