"""Fault rules: make the emulated service fail on purpose, so that a client's retries and error
handling can be tested.

A rule selects requests by method, path glob (``sipphones.emulator.patterns``) and account
(each optional: absent matches any) and does one thing to them:

- ``status``: answers the given HTTP status (400-599) with Zoom's body for it, instead of the
  service (the request does not reach it); ``retry_after`` adds a ``Retry-After`` header: seconds,
  or an ISO-8601 moment as Zoom gives for a daily quota (a 429 then carries the daily message);
  ``code`` and ``message`` replace the body's;
- ``drop``: closes the connection without an answer;
- ``malformed``: answers the given status (default 200) with a JSON content type and a body that
  is not JSON;
- ``delay``: only waits, then the service answers as usual.

Every action first waits ``delay_ms`` milliseconds, or a uniformly random time from ``delay_ms``
to ``delay_max_ms``. A rule applies with its ``probability`` (default 1) to a matching request,
to the next ``times`` such requests (then it is gone) or, with ``times`` null, until removed.
Rules are tried in the order they were added; the first that matches and whose chance comes up
applies, and only that one.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from sipphones.emulator.patterns import MAX_ID_CHARS, MAX_PATTERN_CHARS, Checked, parse_time, path_matches
from sipphones.errors import (
    FieldError, InternalError, InvalidAccessToken, MethodNotAllowed, NoPermission, NotFound, RateLimited,
    ValidationFailed, ZoomError,
)

ACTIONS = ("status", "drop", "malformed", "delay")
MAX_RULES = 200
MAX_DELAY_MS = 120_000
MAX_TIMES = 1_000_000
MAX_RETRY_AFTER_S = 86_400
MAX_MESSAGE_CHARS = 1024
# The body of a ``malformed`` answer: the start of a Zoom error cut off, bytes that are not
# UTF-8, then markup - no JSON parser accepts it, whatever it is lenient about.
MALFORMED_BODY = b'{"code": 500, "message": "Internal ser\xff\xfe<html><body>Bad Gateway</body></html>'

_FIELDS = frozenset({"method", "path", "account_id", "action", "status", "retry_after", "probability",
                     "delay_ms", "delay_max_ms", "times", "code", "message"})


@dataclass(slots=True)
class FaultRule:
    id: str
    action: str
    method: str | None = None
    path: str | None = None
    account_id: str | None = None
    status: int | None = None
    retry_after: int | str | None = None
    probability: float = 1.0
    delay_ms: int = 0
    delay_max_ms: int | None = None
    times: int | None = None         # applications left; None: until removed
    code: int | None = None
    message: str | None = None
    applied: int = 0                 # how often it applied so far

    def matches(self, method: str, path: str, account_id: str | None) -> bool:
        return ((self.method is None or self.method == method)
                and (self.account_id is None or self.account_id == account_id)
                and path_matches(self.path, path))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "method": self.method, "path": self.path, "account_id": self.account_id,
                "action": self.action, "status": self.status, "retry_after": self.retry_after,
                "probability": self.probability, "delay_ms": self.delay_ms, "delay_max_ms": self.delay_max_ms,
                "times": self.times, "code": self.code, "message": self.message, "applied": self.applied}

    def error(self) -> ZoomError:
        """The Zoom error a ``status`` rule answers with."""
        assert self.status is not None
        error = zoom_error(self.status, self.retry_after)
        if self.code is not None or self.message is not None:
            error = _Answer(error, self.code, self.message)
        return error


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request: the rule, and the seconds to wait first."""

    rule: FaultRule
    delay: float


class FaultRules:
    """The fault rules of one server process (thread-safe, as the journal)."""

    def __init__(self, max_rules: int = MAX_RULES, rng: random.Random | None = None):
        self.max_rules = max_rules
        self._rules: list[FaultRule] = []
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rules)

    def add(self, spec: Any) -> FaultRule:
        """A new rule from its JSON description (``ValidationFailed`` naming each bad field)."""
        rule = parse_rule(spec)
        with self._lock:
            if len(self._rules) >= self.max_rules:
                raise ValidationFailed([FieldError("rules", f"at most {self.max_rules} fault rules at once: "
                                                            "remove some first")])
            self._rules.append(rule)
        return rule

    def list(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def get(self, rule_id: str) -> FaultRule | None:
        with self._lock:
            return next((r for r in self._rules if r.id == rule_id), None)

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.id == rule_id:
                    del self._rules[i]
                    return True
            return False

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules.clear()
            return n

    def pick(self, method: str, path: str, account_id: str | None) -> Fault | None:
        """The fault for this request, if a rule applies (counted against its ``times``)."""
        if not self._rules:          # the common case, without the lock
            return None
        with self._lock:
            for i, rule in enumerate(self._rules):
                if not rule.matches(method, path, account_id):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.applied += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._rules[i]
                delay_ms = rule.delay_ms
                if rule.delay_max_ms is not None and rule.delay_max_ms > rule.delay_ms:
                    delay_ms = self._rng.uniform(rule.delay_ms, rule.delay_max_ms)
                return Fault(rule, delay_ms / 1000)
        return None


def parse_rule(spec: Any) -> FaultRule:
    checked = Checked(spec, _FIELDS)
    action = checked.data.get("action", "status")
    known_action = action in ACTIONS
    if not known_action:
        checked.fail("action", f"must be one of {', '.join(ACTIONS)}")
        action = "status"
    status = checked.integer("status", 400 if action == "status" else 100, 599)
    if known_action and action == "status" and "status" not in checked.data:
        checked.fail("status", "is required for the action status")
    if action in ("drop", "delay") and "status" in checked.data:
        checked.fail("status", f"has no meaning for the action {action}")
    if action == "malformed" and status is None:
        status = 200
    retry_after = _retry_after(checked)
    if retry_after is not None and action != "status":
        checked.fail("retry_after", "only for the action status")
    probability = checked.number("probability", 0.0, 1.0)
    delay_ms = checked.integer("delay_ms", 0, MAX_DELAY_MS)
    delay_max_ms = checked.integer("delay_max_ms", 0, MAX_DELAY_MS)
    if delay_max_ms is not None and delay_max_ms < (delay_ms or 0):
        checked.fail("delay_max_ms", "must not be less than delay_ms")
    if action == "delay" and not delay_ms and not delay_max_ms:
        checked.fail("delay_ms", "is required for the action delay")
    times = checked.integer("times", 1, MAX_TIMES)
    code = checked.integer("code", 0, 2**31 - 1)
    message = checked.text("message", MAX_MESSAGE_CHARS)
    if (code is not None or message is not None) and action != "status":
        checked.fail("code" if code is not None else "message", "only for the action status")
    rule = FaultRule(
        id=f"fault_{os.urandom(8).hex()}", action=action, method=checked.method(), path=checked.path(),
        account_id=checked.text("account_id", MAX_ID_CHARS), status=status, retry_after=retry_after,
        probability=1.0 if probability is None else probability, delay_ms=delay_ms or 0, delay_max_ms=delay_max_ms,
        times=times, code=code, message=message)
    if checked.errors:
        raise ValidationFailed(checked.errors)
    return rule


def _retry_after(checked: Checked) -> int | str | None:
    value = checked.data.get("retry_after")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RETRY_AFTER_S:
        return value
    if isinstance(value, str) and len(value) <= 40 and not _is_number(value) and parse_time(value) is not None:
        return value
    checked.fail("retry_after", f"must be whole seconds (0 to {MAX_RETRY_AFTER_S}) or an ISO-8601 moment "
                                "such as 2026-11-28T00:00:00Z")
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def zoom_error(status: int, retry_after: int | str | None = None) -> ZoomError:
    """Zoom's answer for an HTTP ``status``: the error the service itself gives with that status
    where it has one (401 code 124, 403 code 3306, 404, 405, 429 with Zoom's rate-limit message,
    500), else ``{"code": status, "message": "<reason phrase>."}``."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    if status == 429:
        daily = isinstance(retry_after, str)
        return RateLimited(daily=daily, headers={"X-RateLimit-Type": "Daily-limit" if daily else "QPS", **headers})
    known: dict[int, ZoomError] = {401: InvalidAccessToken(), 403: NoPermission(3306), 404: NotFound(),
                                   405: MethodNotAllowed(), 500: InternalError()}
    error = known.get(status)
    if error is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        error = ZoomError(f"{phrase}.", status=status, code=300 if status == 400 else status)
    return _Answer(error, None, None, headers) if headers else error


class _Answer(ZoomError):
    """An error answered as another one, with its code, message or headers replaced."""

    def __init__(self, base: ZoomError, code: int | None, message: str | None, headers: dict[str, str] | None = None):
        super().__init__(base.message if message is None else message, status=base.status,
                         code=base.code if code is None else code)
        self._headers = {**base.headers(), **(headers or {})}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)
