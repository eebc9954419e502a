"""The retry policy, shared by the sync and the async client (tenacity runs it).

What is retried, and why it is safe:

- **HTTP 429** (rate limited): always. The service refused the request before doing anything,
  so a retry cannot do it twice, whatever the method. The wait is the answer's ``Retry-After``
  (seconds, an ISO-8601 timestamp such as Zoom's ``2026-11-28T00:00:00Z`` for daily quotas, or
  an HTTP-date), or the backoff when it is absent. A ``Retry-After`` longer than
  ``max_retry_after`` (default 60 s: a daily quota asks for hours) is not waited for: the
  ``RateLimitError`` is raised at once with ``retry_after`` set.
- **Connection failures before the request was sent** (connect error or timeout, no free
  connection in the pool): always; the service never saw the request.
- **A failure after the request may have been sent** (read timeout, broken connection, the
  server closing it without an answer), and **HTTP 502/503/504**: only for GET, PATCH and DELETE.
  A GET reads; our PATCHes set fields to given values, so doing one twice leaves the same phone;
  a DELETE done twice deletes once (the second attempt may then answer "not found", which the
  caller sees). A **POST is not retried** then: the create may have happened, and a second one
  would fail as a duplicate (code 300 for phones, 1005 for users) or, for another body, create
  a second record. The ``TransportError`` says ``maybe_delivered=True``; list to find out.
  The token request is a POST but creates nothing (a second token is harmless): it is retried
  like a GET.

Everything else (4xx answers, a 401 that a token refresh did not cure) is raised at once. The
number of retries is bounded by ``max_retries`` and every wait by ``backoff_max`` /
``max_retry_after``, so a call ends.
"""

from __future__ import annotations

import email.utils
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import tenacity

from sipphones.client.errors import RateLimitError, TransportError, ZoomAPIError

log = logging.getLogger("sipphones.client")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
TOKEN_METHOD = "TOKEN"  # the token request: a POST that is safe to repeat
MAX_RETRY_AFTER_TEXT = 64  # longer Retry-After values are not parsed


@dataclass(frozen=True)
class RetryEvent:
    """What the ``on_retry`` hook receives before each wait: the attempt that failed (1 = the
    first), the seconds the client will now sleep, why (``"429"``, ``"503"``, ``"transport"``),
    the request's method and path, and the error."""

    attempt: int
    wait: float
    reason: str
    method: str
    path: str
    error: BaseException


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta seconds, an ISO-8601 timestamp
    (Zoom's daily quota) or an HTTP-date; None when absent or unreadable. A time in the past
    gives 0. ``now``: the Unix time."""
    if not value:
        return None
    text = value.strip()
    if not text or len(text) > MAX_RETRY_AFTER_TEXT:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    when: datetime | None
    try:
        when = datetime.fromisoformat(text)  # 2026-11-28T00:00:00Z (Python 3.11 reads the Z)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)  # Sat, 28 Nov 2026 00:00:00 GMT
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5          # retries after the first attempt
    backoff_initial: float = 0.5  # seconds before the first retry when the server gives no Retry-After
    backoff_max: float = 10.0     # the backoff doubles up to this
    max_retry_after: float = 60.0  # a longer Retry-After is not waited for

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or not 0 <= self.max_retries <= 100:
            raise ValueError(f"max_retries must be an integer from 0 to 100, not {self.max_retries!r}")
        for name in ("backoff_initial", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 86_400:
                raise ValueError(f"{name} must be a number of seconds from 0 to 86400, not {value!r}")

    def may_retry(self, error: BaseException, method: str) -> bool:
        """Whether ``error`` from a ``method`` request may be retried (the rules above)."""
        if isinstance(error, RateLimitError):
            return error.retry_after is None or error.retry_after <= self.max_retry_after
        safe_to_repeat = method in IDEMPOTENT_METHODS or method == TOKEN_METHOD
        if isinstance(error, TransportError):
            return not error.maybe_delivered or safe_to_repeat
        if isinstance(error, ZoomAPIError):
            return error.status_code in RETRYABLE_STATUSES and safe_to_repeat
        return False

    def wait_for(self, error: BaseException | None, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (1-based)."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > 0:
            # The service's word, plus a little jitter so that clients refused together do not
            # all come back in the same instant.
            return float(retry_after) + random.uniform(0, min(1.0, retry_after / 10))
        backoff = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return random.uniform(backoff / 2, backoff)  # "equal jitter"

    def tenacity_kwargs(self, step: Callable[[], str], path: str,
                        on_retry: Callable[[RetryEvent], Any] | None) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` or ``tenacity.AsyncRetrying``; ``step()`` names
        the method whose rules apply to the failure at hand (``TOKEN`` while fetching a token)."""

        def wait(state: tenacity.RetryCallState) -> float:
            assert state.outcome is not None
            return self.wait_for(state.outcome.exception(), state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None
            error = state.outcome.exception() or Exception("no error")  # retries follow errors only
            reason = "transport" if isinstance(error, TransportError) else str(getattr(error, "status_code", "?"))
            event = RetryEvent(state.attempt_number, state.next_action.sleep, reason, step(), path, error)
            log.info("retrying %s %s in %.2f s (attempt %d failed: %s)", event.method, path, event.wait,
                     event.attempt, reason)
            if on_retry is not None:
                on_retry(event)

        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(lambda e: self.may_retry(e, step())),
            "before_sleep": before_sleep,
            "reraise": True,
        }
