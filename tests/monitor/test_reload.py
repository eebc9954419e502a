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
