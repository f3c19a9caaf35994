"""Retry policy for calls to the Speech service, declared once and run by stamina.

What is retried is decided by exception type (see `shared/errors.py`): only
`SpeechTransientError` (429, 5xx, timeouts, connection failures). Waits grow exponentially
with jitter, capped, for a bounded number of attempts and a bounded total time; when the
service sends `Retry-After`, that wait is used instead — unless it is longer than
`max_retry_wait`, in which case nothing sleeps: the error goes straight to the caller, who
defers the job (a Function must not sit idle for minutes, and the poller will come back).

Tests make every wait zero with `set_testing(True, attempts=..., cap=True)` (stamina's own
test mode; `cap=True` keeps the client's attempt limit when it is lower).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import stamina

from shared.errors import SpeechTransientError

__all__ = ["RetryPolicy", "parse_retry_after", "set_testing"]

# Retry-After values above this are nonsense (or a date far away): treat them as "very long".
_MAX_SANE_RETRY_AFTER = 7 * 24 * 3600.0

T = TypeVar("T")


def set_testing(on: bool, *, attempts: int = 1, cap: bool = False) -> AbstractContextManager[None]:
    """Turn stamina's test mode on/off: no waits, `attempts` tries (capped with `cap=True`).

    Returns stamina's context manager, so `with set_testing(True, attempts=3, cap=True):`
    restores the previous mode afterwards.
    """
    return stamina.set_testing(on, attempts=attempts, cap=cap)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP-date.

    None when absent or unparseable; dates in the past give 0.0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_SANE_RETRY_AFTER)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient Speech failure.

    `attempts` counts every try (1 = no retry). Backoff for try n is
    min(wait_max, wait_initial * 2**(n-1) + U(0, wait_jitter)); a `Retry-After` replaces it
    (plus up to 10 % jitter, at most 1 s, so throttled callers do not return in lockstep).
    `budget` bounds the total time spent retrying one call.
    """

    attempts: int = 5
    max_retry_wait: float = 30.0
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_jitter: float = 1.0
    budget: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.max_retry_wait < 0:
            raise ValueError(f"max_retry_wait must not be negative, got {self.max_retry_wait}")

    def backoff(self, exc: Exception) -> bool | float:
        """stamina backoff hook: False = no retry, True = exponential backoff, float = wait this.

        An error marked `not_sent` (the client's own rate limiter said no after waiting) is
        not retried here: its caller defers instead.
        """
        if not isinstance(exc, SpeechTransientError) or getattr(exc, "not_sent", False):
            return False
        if exc.retry_after is None:
            return True
        if exc.retry_after > self.max_retry_wait:
            return False
        return exc.retry_after + random.uniform(0, min(1.0, 0.1 * exc.retry_after))  # noqa: S311

    def call(self, once: Callable[[], T]) -> T:
        """`once()`, tried again per this policy while it raises a retryable error.

        The last error is raised when the policy gives up (attempts, budget, a long
        `Retry-After`, or an error that is not retryable).
        """
        retrying = stamina.retry(
            on=self.backoff,
            attempts=self.attempts,
            timeout=self.budget,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )
        return retrying(once)()
