"""Fault injection: the rate limit, random 500/503 answers, job fates and failing files."""

from __future__ import annotations

import math
import random
import threading
import time

from shared.rate_window import Rate, SlidingWindow
from speech_emulator.config import Behaviour
from speech_emulator.errors import ApiError
from speech_emulator.jobs import Fate


class RateLimiter:
    """A sliding-window limit on Speech API calls, like the real tier (100 per 10 s).

    The window is `shared.rate_window.SlidingWindow`, the one the app's client-side limiter
    counts with; the limit is read on every call because the admin API can change it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = SlidingWindow()

    def check(self, limit: Rate | None, now: float | None = None) -> None:
        """Count one call; raise the service's 429 (with Retry-After) when over the limit."""
        if limit is None:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = self._window.wait(now, cap=limit.calls, per_seconds=limit.per_seconds)
            if wait > 0.0:
                retry_after = max(1, math.ceil(wait))
                raise ApiError(
                    429,
                    "TooManyRequests",
                    f"The rate limit of {limit.calls} requests per {limit.per_seconds:g} "
                    f"seconds has been exceeded. Retry after {retry_after} seconds.",
                    inner_code="QuotaViolation",
                    headers={"Retry-After": str(retry_after)},
                )
            self._window.add(now)

    def reset(self) -> None:
        """Forget past calls."""
        with self._lock:
            self._window.clear()


class Dice:
    """Random fault decisions; seeded for reproducible runs."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not security

    def _roll(self) -> float:
        with self._lock:
            return self._random.random()

    def server_error(self, behaviour: Behaviour) -> ApiError | None:
        """A 500 or 503 answer for a share ``error_rate`` of calls, else None."""
        if behaviour.error_rate <= 0 or self._roll() >= behaviour.error_rate:
            return None
        if self._roll() < 0.5:
            return ApiError(
                500,
                "InternalServerError",
                "An internal error occurred (injected fault).",
                inner_code="UnexpectedError",
            )
        return ApiError(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable (injected fault).",
            inner_code="UnexpectedError",
            headers={"Retry-After": "1"},
        )

    def fate(self, behaviour: Behaviour) -> Fate:
        """Decide at creation whether a job fails, vanishes or runs normally."""
        roll = self._roll()
        if roll < behaviour.vanish_share:
            return Fate.VANISH
        if roll < behaviour.vanish_share + behaviour.fail_share:
            return Fate.FAIL
        return Fate.NORMAL

    def file_fails(self, behaviour: Behaviour) -> bool:
        """Decide, as a file takes its slot, whether it fails with ``file_fail_code``."""
        return behaviour.file_fail_share > 0 and self._roll() < behaviour.file_fail_share
