"""Fault rules (sipphones.emulator.faults): parsing, matching, chance, times, the answers."""

from __future__ import annotations

import random

import pytest

from sipphones.emulator.faults import FaultRules, zoom_error
from sipphones.errors import ValidationFailed


def test_a_rule_applies_to_the_next_n_matching_requests_then_is_gone():
    rules = FaultRules()
    rule = rules.add({"method": "post", "path": "/v2/sip_phones*", "status": 429, "retry_after": 2, "times": 2})
    assert rule.id.startswith("fault_") and rule.method == "POST" and rule.action == "status"
    assert rules.pick("GET", "/v2/sip_phones/phones", None) is None          # other method
    assert rules.pick("POST", "/v2/users", None) is None                     # other path
    first = rules.pick("POST", "/v2/sip_phones/phones", "acc")
    assert first is not None and first.rule is rule and first.delay == 0
    assert rules.pick("POST", "/v2/sip_phones", None).rule is rule
    assert rules.pick("POST", "/v2/sip_phones/phones", "acc") is None and len(rules) == 0
    assert rule.applied == 2


def test_an_open_ended_rule_stays_until_removed():
    rules = FaultRules()
    rule = rules.add({"status": 500})
    for _ in range(50):
        assert rules.pick("GET", "/v2/anything", None).rule is rule
    assert rules.list() == [rule] and rules.get(rule.id) is rule
    assert rules.remove(rule.id) is True and rules.remove(rule.id) is False
    assert rules.pick("GET", "/v2/anything", None) is None


def test_account_matching():
    rules = FaultRules()
    rules.add({"account_id": "acc1", "action": "drop"})
    assert rules.pick("GET", "/v2/x", "acc2") is None
    assert rules.pick("GET", "/v2/x", None) is None
    assert rules.pick("GET", "/v2/x", "acc1").rule.action == "drop"


def test_rules_are_tried_in_order_and_the_first_applies():
    rules = FaultRules()
    a = rules.add({"path": "/v2/sip_phones/phones", "status": 503, "times": 1})
    b = rules.add({"path": "/v2/*", "status": 500})
    assert rules.pick("GET", "/v2/sip_phones/phones", None).rule is a
    assert rules.pick("GET", "/v2/sip_phones/phones", None).rule is b
    assert rules.clear() == 1 and rules.list() == []


def test_probability_decides_per_request_and_times_counts_applications_only():
    rules = FaultRules(rng=random.Random(7))
    rule = rules.add({"status": 500, "probability": 0.25, "times": 1000})
    hits = sum(rules.pick("GET", "/v2/x", None) is not None for _ in range(4000))
    assert 850 < hits < 1150 and rule.applied == hits and rule.times == 1000 - hits
    never = FaultRules()
    never.add({"status": 500, "probability": 0})
    assert all(never.pick("GET", "/v2/x", None) is None for _ in range(100))


def test_delays_fixed_and_random():
    rules = FaultRules(rng=random.Random(1))
    rules.add({"action": "delay", "delay_ms": 250, "times": 1})
    assert rules.pick("GET", "/v2/x", None).delay == 0.25
    rules.add({"status": 503, "delay_ms": 100, "delay_max_ms": 300})
    delays = [rules.pick("GET", "/v2/x", None).delay for _ in range(200)]
    assert all(0.1 <= d <= 0.3 for d in delays) and max(delays) - min(delays) > 0.1


def test_the_answers_are_zoom_bodies():
    assert zoom_error(429, 7).body() == {
        "code": 429, "message": "You have reached the maximum per-second rate limit for this API. Try again later."}
    assert zoom_error(429, 7).headers() == {"X-RateLimit-Type": "QPS", "Retry-After": "7"}
    daily = zoom_error(429, "2026-12-09T00:00:00Z")
    assert "daily" in daily.body()["message"]
    assert daily.headers() == {"X-RateLimit-Type": "Daily-limit", "Retry-After": "2026-12-09T00:00:00Z"}
    assert zoom_error(429).headers() == {"X-RateLimit-Type": "QPS"}
    assert (zoom_error(500).status, zoom_error(500).body()) == (500, {"code": 500, "message": "Internal server error."})
    assert zoom_error(503, 3).body() == {"code": 503, "message": "Service Unavailable."}
    assert zoom_error(503, 3).headers() == {"Retry-After": "3"} and zoom_error(503, 3).status == 503
    assert zoom_error(401).body() == {"code": 124, "message": "Invalid access token."}
    assert zoom_error(403).body()["code"] == 3306 and zoom_error(404).status == 404
    assert zoom_error(400).body() == {"code": 300, "message": "Bad Request."}
    assert zoom_error(599).body() == {"code": 599, "message": "Error."}


def test_code_and_message_can_be_replaced():
    rules = FaultRules()
    rule = rules.add({"status": 404, "code": 2305, "message": "SIP phone does not exist: abc."})
    error = rule.error()
    assert error.status == 404 and error.body() == {"code": 2305, "message": "SIP phone does not exist: abc."}
    limited = rules.add({"status": 429, "retry_after": 1, "message": "slow down"}).error()
    assert limited.headers()["Retry-After"] == "1" and limited.body()["code"] == 429


@pytest.mark.parametrize("spec, fields", [
    ({}, ["status"]),
    ({"status": 200}, ["status"]),
    ({"action": "explode"}, ["action"]),
    ({"action": "drop", "status": 500}, ["status"]),
    ({"status": 500, "probability": 1.5}, ["probability"]),
    ({"status": 500, "probability": "1"}, ["probability"]),
    ({"status": 500, "delay_ms": -1}, ["delay_ms"]),
    ({"status": 500, "delay_ms": 10 ** 9}, ["delay_ms"]),
    ({"status": 500, "delay_ms": 200, "delay_max_ms": 100}, ["delay_max_ms"]),
    ({"status": 500, "times": 0}, ["times"]),
    ({"status": 500, "times": True}, ["times"]),
    ({"status": 429, "retry_after": -1}, ["retry_after"]),
    ({"status": 429, "retry_after": "soon"}, ["retry_after"]),
    ({"status": 429, "retry_after": "5"}, ["retry_after"]),
    ({"action": "drop", "retry_after": 5}, ["retry_after"]),
    ({"action": "delay"}, ["delay_ms"]),
    ({"action": "malformed", "code": 3}, ["code"]),
    ({"status": 500, "method": "BREW"}, ["method"]),
    ({"status": 500, "path": "v2/*"}, ["path"]),
    ({"status": 500, "path": "/" + "a" * 600}, ["path"]),
    ({"status": 500, "colour": "red"}, ["colour"]),
    ({"status": 500, "message": ""}, ["message"]),
    ([], ["body", "status"]),
])
def test_a_bad_rule_is_refused_naming_each_bad_field(spec, fields):
    rules = FaultRules()
    with pytest.raises(ValidationFailed) as e:
        rules.add(spec)
    assert sorted(err.field for err in e.value.errors) == sorted(fields)
    assert len(rules) == 0


def test_malformed_defaults_to_200_and_the_rule_count_is_bounded():
    rules = FaultRules(max_rules=2)
    assert rules.add({"action": "malformed"}).status == 200
    rules.add({"action": "malformed", "status": 502})
    with pytest.raises(ValidationFailed):
        rules.add({"status": 500})


def test_path_globs_match_the_whole_path_and_brackets_are_plain():
    rules = FaultRules()
    rules.add({"path": "/v2/[x]*", "status": 500})
    assert rules.pick("GET", "/v2/x", None) is None
    assert rules.pick("GET", "/v2/[x]/y", None) is not None
    rules.clear()
    rules.add({"path": "/v2/sip_phones", "status": 500})
    assert rules.pick("GET", "/v2/sip_phones/phones", None) is None


@pytest.mark.parametrize("pattern, path, expected", [
    ("/v2/*", "/v2/", True), ("/v2/*", "/v2", False), ("*", "/anything/at/all", True),
    ("/v2/*/phones", "/v2/sip_phones/phones", True), ("/v2/*/phones", "/v2/phones", False),
    ("/v2/*s*s", "/v2/ss", True), ("/v2/*s*s", "/v2/s", False), ("/a*b*c", "/abbbc", True),
    ("/a*b*c", "/acb", False), ("/?2/*", "/v2/x", True), ("/*?", "/", False), ("/*?", "/x", True),
    ("*phones/??", "/v2/sip_phones/phones/ab", True), ("*phones/??", "/v2/sip_phones/phones/abc", False),
    ("/x**y", "/xy", True), ("/a*a", "/a", False), ("/a*a", "/aa", True),
])
def test_globs(pattern, path, expected):
    from sipphones.emulator.patterns import path_matches

    assert path_matches(pattern, path) is expected


@pytest.mark.timeout(120)
def test_a_pathological_glob_ends():
    from sipphones.emulator.patterns import path_matches

    # A backtracking regex, (.*a){200}.*b, would not end in a lifetime on this path.
    pattern = "/" + "*a" * 200 + "*b"
    assert path_matches(pattern, "/" + "a" * 30_000) is False
    assert path_matches(pattern, "/" + "a" * 30_000 + "b") is True
