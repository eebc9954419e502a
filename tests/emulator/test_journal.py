"""The request journal (sipphones.emulator.journal): recording, masking, bounds, queries, count."""

from __future__ import annotations

import orjson
import pytest

from sipphones.emulator.journal import Exchange, Journal, Matcher
from sipphones.emulator.masking import MASK
from sipphones.errors import ValidationFailed

JSON = [(b"content-type", b"application/json")]


def exchange(method="POST", path="/v2/sip_phones/phones", account="acc1", body=None, status=201,
             response=None, started=1000.0, headers=(), response_headers=None, **kw) -> Exchange:
    raw = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else b"")
    answer = response if isinstance(response, bytes) else (orjson.dumps(response) if response is not None else b"")
    return Exchange(method, path, "", account, [*JSON, *headers], raw, status,
                    JSON if response_headers is None else response_headers, answer, started, 0.002, **kw)


def test_an_entry_holds_the_request_and_answer_with_secrets_masked():
    journal = Journal()
    entry = journal.record(exchange(
        body={"user_email": "a@example.com", "password": "hunter2"},
        headers=[(b"authorization", b"Bearer eyJ.secret.token")],
        response={"id": "p1", "password": "hunter2"}))
    d = entry.as_dict()
    assert d["id"] == 1 and d["method"] == "POST" and d["account_id"] == "acc1" and d["time"] == 1000.0
    assert d["request"]["body"] == {"user_email": "a@example.com", "password": MASK}
    assert d["request"]["headers"]["authorization"] == f"Bearer {MASK}"
    assert d["response"]["status"] == 201 and d["response"]["body"] == {"id": "p1", "password": MASK}
    assert d["dropped"] is False and d["duration_ms"] == 2.0
    assert b"hunter2" not in orjson.dumps(d) and b"secret.token" not in orjson.dumps(d)


def test_a_token_answer_and_form_request_are_masked():
    journal = Journal()
    entry = journal.record(Exchange(
        "POST", "/oauth/token", "grant_type=account_credentials&account_id=acc1", "acc1",
        [(b"authorization", b"Basic Y2lkOnNlY3JldA=="), (b"content-type", b"application/x-www-form-urlencoded")],
        b"grant_type=client_credentials&client_secret=abc", 200, JSON,
        b'{"access_token": "eyJ.tok", "token_type": "bearer", "expires_in": 3599}', 5.0, 0.001))
    d = entry.as_dict()
    assert d["request"]["body"] == {"grant_type": "client_credentials", "client_secret": MASK}
    assert d["request"]["body_format"] == "form"
    assert d["response"]["body"]["access_token"] == MASK and d["response"]["body"]["expires_in"] == 3599
    assert "eyJ.tok" not in orjson.dumps(d).decode()


def test_a_dropped_connection_is_an_entry_without_answer():
    journal = Journal()
    d = journal.record(exchange(status=None, response_headers=[], fault_id="fault_1")).as_dict()
    assert d["response"] is None and d["dropped"] is True and d["fault_id"] == "fault_1"


def test_the_ring_keeps_the_newest_entries_only():
    journal = Journal(max_entries=3)
    for i in range(5):
        journal.record(exchange(started=float(i)))
    entries, total = journal.query(Matcher())
    assert [e.id for e in entries] == [3, 4, 5] and total == 3 and len(journal) == 3
    assert journal.get(2) is None and journal.get(4).id == 4 and journal.get(6) is None


def test_an_entry_is_cut_to_its_byte_bound_and_says_so():
    journal = Journal(max_entry_bytes=2048)
    big = {"user_email": "a@example.com", "password": "hunter2", "pad": "x" * 5000}
    d = journal.record(exchange(body=big, response={"phones": ["y" * 100] * 50, "password": "p"})).as_dict()
    request, response = d["request"], d["response"]
    assert request["body_truncated"] and request["body_format"] == "text" and request["body_bytes"] > 5000
    assert response["body_truncated"] and response["body_format"] == "text"
    stored = len(request["body"]) + len(response["body"]) + sum(len(k) + len(v) for k, v in
                                                                request["headers"].items())
    assert stored <= 2048
    assert "hunter2" not in request["body"]


def test_headers_take_at_most_a_quarter_of_the_bound():
    journal = Journal(max_entry_bytes=1024)
    headers = [(b"x-h%d" % i, b"v" * 50) for i in range(40)]
    d = journal.record(exchange(body={"a": 1}, headers=headers)).as_dict()
    assert d["headers_truncated"] is True
    assert sum(len(k) + len(v) for k, v in d["request"]["headers"].items()) <= 256
    assert d["request"]["body"] == {"a": 1}


def test_a_body_captured_in_part_is_kept_as_masked_text():
    journal = Journal()
    d = journal.record(exchange(body=b'{"user_email": "a@x.com", "password": "hunt', request_size=90_000)).as_dict()
    assert d["request"]["body_truncated"] and d["request"]["body_bytes"] == 90_000
    assert "hunt" not in d["request"]["body"]


def test_non_json_and_invalid_json_bodies_are_text():
    journal = Journal()
    d = journal.record(exchange(body=b"{not json, \"password\": \"pw\"}", response=b"")).as_dict()
    assert d["request"]["body_format"] == "text" and "pw\"" not in d["request"]["body"]
    assert d["response"]["body_format"] == "none" and d["response"]["body"] is None
    d = journal.record(exchange(body=b"plain", headers=[], response=b"ok")).as_dict()
    assert d["request"]["body"] == "plain"


def test_queries_by_method_path_glob_account_status_and_time():
    journal = Journal()
    journal.record(exchange("POST", "/v2/sip_phones/phones", "acc1", started=10.0))
    journal.record(exchange("GET", "/v2/sip_phones/phones", "acc1", started=20.0, status=200))
    journal.record(exchange("DELETE", "/v2/sip_phones/phones/p1", "acc2", started=30.0, status=204))
    journal.record(exchange("POST", "/oauth/token", "acc2", started=40.0, status=200))

    def ids(**criteria):
        return [e.id for e in journal.query(Matcher.parse(criteria, with_body=False))[0]]

    assert ids(method="post") == [1, 4]
    assert ids(path="/v2/sip_phones*") == [1, 2, 3]
    assert ids(path="/v2/sip_phones/phones") == [1, 2]
    assert ids(path="/v2/sip_phones/phones/?1") == [3]
    assert ids(account_id="acc2") == [3, 4]
    assert ids(status=204) == [3]
    assert ids(since=20, until=30) == [2, 3]
    assert ids(since="1970-01-01T00:00:35Z") == [4]
    entries, total = journal.query(Matcher(), limit=2, newest_first=True)
    assert [e.id for e in entries] == [4, 3] and total == 4


def test_count_matches_body_members_including_nested_ones():
    journal = Journal()
    for email in ("x@example.com", "x@example.com", "y@example.com", "x@example.com"):
        journal.record(exchange(body={"user_email": email, "server": {"port": 5060, "host": "h"}, "n": 1}))
    journal.record(exchange("GET", body=None))

    def count(**criteria):
        return journal.count(Matcher.parse(criteria))

    assert count(method="POST", path="/v2/sip_phones/phones", body={"user_email": "x@example.com"}) == 3
    assert count(body={"server": {"port": 5060}}) == 4
    assert count(body={"server": {"port": "5060"}}) == 0      # types count: "5060" is not 5060
    assert count(body={"n": 1.0}) == 4                        # a number is a number
    assert count(body={"n": True}) == 0
    assert count(body={"missing": None}) == 0
    assert count() == 5


def test_clear_empties_the_journal_and_ids_go_on():
    journal = Journal()
    journal.record(exchange())
    journal.record(exchange())
    assert journal.clear() == 2 and len(journal) == 0
    assert journal.record(exchange()).id == 3


def test_a_journal_that_is_off_records_nothing():
    journal = Journal(enabled=False)
    assert journal.record(exchange()) is None and len(journal) == 0


@pytest.mark.parametrize("criteria, field", [
    ({"method": "FETCH"}, "method"), ({"path": "v2/x"}, "path"), ({"status": "200"}, "status"),
    ({"since": "yesterday"}, "since"), ({"body": [1]}, "body"), ({"account_id": "a" * 500}, "account_id"),
    ({"nope": 1}, "nope"), ({"body": {"x": "y" * 10_000}}, "body"),
])
def test_a_bad_matcher_is_refused_naming_the_field(criteria, field):
    with pytest.raises(ValidationFailed) as e:
        Matcher.parse(criteria)
    assert [err.field for err in e.value.errors] == [field]


def test_a_matcher_that_is_not_an_object_is_refused():
    with pytest.raises(ValidationFailed):
        Matcher.parse([1, 2])


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        Journal(max_entries=0)
    with pytest.raises(ValueError):
        Journal(max_entry_bytes=10)
