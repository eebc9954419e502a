"""The reload diff and the phone selection: what the monitor starts, restarts and stops."""

from sipphones.monitor.reload import FleetChanges, PhoneSelection, diff_versions


def test_diff_finds_added_changed_and_removed():
    managed = {"a": 1.0, "b": 2.0, "c": 3.0}
    current = {"a": 1.0, "b": 2.5, "d": 4.0}
    changes = diff_versions(managed, current)
    assert changes == FleetChanges(added=("d",), changed=("b",), removed=("c",))
    assert len(changes) == 3 and not changes.empty


def test_an_older_timestamp_is_a_change_too():
    # a restored backup may carry an older updated_at: the running binding is still stale
    assert diff_versions({"a": 5.0}, {"a": 4.0}).changed == ("a",)


def test_nothing_changed_is_empty():
    changes = diff_versions({"a": 1.0, "b": 2.0}, {"b": 2.0, "a": 1.0})
    assert changes.empty and len(changes) == 0


def test_first_load_adds_everything_in_order():
    assert diff_versions({}, {"z": 1.0, "a": 1.0}).added == ("a", "z")


def test_selection_without_filters_keeps_everything():
    sel = PhoneSelection.of()
    assert sel.account_queries == [None]
    assert sel.keep({"a": 1.0, "b": 2.0}) == {"a": 1.0, "b": 2.0}
    assert sel.wants("a", "acc")


def test_selection_by_phone_and_account_narrows():
    sel = PhoneSelection.of(accounts=["acc2", "acc1", ""], phones=["p1", "p3"])
    assert sel.account_queries == ["acc1", "acc2"]
    assert sel.keep({"p1": 1.0, "p2": 1.0, "p3": 2.0}) == {"p1": 1.0, "p3": 2.0}
    assert sel.wants("p1", "acc1")
    assert not sel.wants("p2", "acc1")
    assert not sel.wants("p1", "other")


def test_shards_split_the_fleet_without_overlap_or_gap():
    from sipphones.ids import new_id
    from sipphones.monitor.reload import shard_of

    versions = {new_id(): float(i) for i in range(3000)}
    parts = [PhoneSelection.of(shard=k, shards=3).keep(versions) for k in range(3)]
    assert sum(len(p) for p in parts) == len(versions)
    assert set().union(*parts) == set(versions)
    assert all(700 < len(p) < 1300 for p in parts)       # CRC-32 spreads time-ordered ids evenly
    for k, part in enumerate(parts):
        assert all(shard_of(pid, 3) == k for pid in part)
        assert all(PhoneSelection.of(shard=k, shards=3).wants(pid, "acc") for pid in list(part)[:50])
    assert shard_of("abc", 4) == shard_of("abc", 4) == __import__("zlib").crc32(b"abc") % 4


def test_a_shard_narrows_the_other_filters_too():
    sel = PhoneSelection.of(accounts=["acc1"], phones=["p1", "p2", "p3", "p4"], shard=1, shards=2)
    from sipphones.monitor.reload import shard_of
    mine = {p for p in ("p1", "p2", "p3", "p4") if shard_of(p, 2) == 1}
    assert set(sel.keep({p: 1.0 for p in ("p1", "p2", "p3", "p4", "p5")})) == mine
    assert not sel.wants(next(iter(mine)), "acc2")


def test_a_shard_that_does_not_exist_is_refused():
    import pytest
    for shard, shards in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            PhoneSelection.of(shard=shard, shards=shards)
