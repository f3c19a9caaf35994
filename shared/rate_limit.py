"""Client-side rate limiting for Speech API calls: a sliding window with priorities.

The Speech service allows a fixed number of requests per sliding window (S0: 100 per
10 s) and answers the rest with 429. Sending into a full window only earns 429s, which
count against the quota too, so the client waits for a slot instead. Not every call is
equal: a completion (list files, delete) turns finished work into outputs, a status call
keeps polling alive, a submission only adds more work. Submissions may use the window
only down to a reserve (`RateLimit.reserve`, a fraction of it), so completions and polls
go first when the quota is scarce. Submissions are also paced to their own share of the
window (`RateLimit.submission_share`): each one brings two completion calls about a
processing time later, so submitting faster than a third of the quota only builds a burst
of finished jobs that the quota cannot collect in time. A real 429's `Retry-After` is fed
back with `pause`, so every thread of the process backs off together.

One limiter per endpoint and process (`shared_limiter`): the quota belongs to the Speech
resource, not to one client object. The clock and the sleep are injectable, so tests run
without sleeping.

The ``N/SECONDS`` form and the window of recent calls come from `shared.rate_window`,
which the Speech emulator's own 429 limit uses too; this module adds what only the app
needs: priorities, the shared pause, and `Limiter`, the small interface the Speech
transport depends on (so a limiter shared across instances could replace this one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from shared.errors import SpeechThrottledError
from shared.rate_window import Rate, SlidingWindow

__all__ = [
    "RATE_LIMIT_SCOPES",
    "CallPurpose",
    "Limiter",
    "RateLimit",
    "RateLimitedError",
    "RateLimiter",
    "acquire_within",
    "parse_rate_limit",
    "shared_limiter",
    "window_delay",
]

# Who shares one SPEECH_RATE_LIMIT: every instance of the app (`shared.app_rate_limit`) or
# each process alone (`shared_limiter`).
RATE_LIMIT_SCOPES: Final = ("app", "process")
_OFF: Final = frozenset({"0", "off", "none", "false", "no"})


class CallPurpose(StrEnum):
    """Why a Speech call is made; decides its share of the window."""

    COMPLETION = "completion"  # list files, delete: finished work becomes outputs
    STATUS = "status"  # get / list transcriptions: polling
    SUBMISSION = "submission"  # POST: new work, only from what the others leave


class RateLimitedError(SpeechThrottledError):
    """The client's own limiter refused a call (no request was sent); defer like a 429.

    Not retried inside the client (`not_sent`): the limiter already waited as long as the
    caller may, and its estimate is in `retry_after` for the deferral.
    """

    not_sent = True


class Limiter(Protocol):
    """What the Speech transport needs of a rate limiter (`RateLimiter` is the in-process one).

    The seam lets another implementation (one shared across instances, say) stand in
    without the transport changing. `str(limiter)` names the limit in error messages.
    """

    def acquire(self, purpose: CallPurpose, *, max_wait: float) -> bool:
        """Take a slot for a call of `purpose`, waiting at most `max_wait` s; False: none came."""
        ...

    def pause(self, seconds: float) -> None:
        """The service answered 429: nobody sends for `seconds` (never shortens a pause)."""
        ...

    def wait_estimate(self, purpose: CallPurpose) -> float:
        """Seconds until a call of `purpose` could go (0.0: now); takes nothing."""
        ...


@dataclass(frozen=True)
class RateLimit(Rate):
    """`calls` per sliding window of `per_seconds`.

    Submissions take at most `submission_share` of a window's calls, and none while fewer
    than `reserve` of the window is left for completions and polls.
    """

    submission_share: float = 0.3
    reserve: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.reserve < 1.0:
            raise ValueError(f"reserve must be a fraction in [0, 1), got {self.reserve}")
        if not 0.0 < self.submission_share <= 1.0:
            raise ValueError(f"submission_share must be in (0, 1], got {self.submission_share}")

    @property
    def submission_cap(self) -> int:
        """How many submissions one window may hold (at least one)."""
        return max(1, int(self.calls * self.submission_share))

    @property
    def submission_total_cap(self) -> int:
        """A submission goes only while the window holds fewer calls than this."""
        return max(1, int(self.calls * (1.0 - self.reserve)))


def parse_rate_limit(text: str) -> RateLimit | None:
    """``"90/10"`` -> 90 calls per 10 s; ``"0"``/``"off"`` -> None (no limit).

    Raises ValueError naming the expected form for anything else.
    """
    if text.strip().lower() in _OFF:
        return None
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise ValueError(f"{exc}; or 0/off to disable the limit") from None


def window_delay(
    limit: RateLimit,
    purpose: CallPurpose,
    sent: SlidingWindow,
    submitted: SlidingWindow,
    now: float,
    *,
    margin: float = 0.0,
) -> float:
    """Seconds until a call of `purpose` may go, given the window's calls; 0.0: now.

    The one decision both limiters make (`RateLimiter` in process, `shared.app_rate_limit`
    over a shared table): every call counts against `limit.calls`; a submission also
    against its share and the reserve. `margin` lengthens the window (seconds), for calls
    stamped by clocks that may differ a little.
    """
    per = limit.per_seconds + margin
    if purpose is not CallPurpose.SUBMISSION:
        return sent.wait(now, cap=limit.calls, per_seconds=per)
    return max(
        sent.wait(now, cap=limit.submission_total_cap, per_seconds=per),
        submitted.wait(now, cap=limit.submission_cap, per_seconds=per),
    )


def acquire_within(
    try_acquire: Callable[[CallPurpose], float],
    purpose: CallPurpose,
    max_wait: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> bool:
    """Ask `try_acquire` (seconds until a slot, 0.0 = granted) until it grants, sleeping the
    delay it names; False, without sleeping past it, when no slot comes within `max_wait`."""
    deadline = clock() + max_wait
    while True:
        delay = try_acquire(purpose)
        if delay == 0.0:
            return True
        if clock() + delay > deadline:
            return False
        sleep(delay)


class RateLimiter:
    """A thread-safe sliding-window limiter with per-purpose caps and a shared pause.

    `try_acquire` is the pure decision (take a slot now, or say how long until one may
    free up); `acquire` waits for it with the injected `sleep`, up to `max_wait` seconds.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent = SlidingWindow()  # every call in the current window
        self._submitted = SlidingWindow()  # the submissions among them
        self._paused_until = 0.0

    def __str__(self) -> str:
        return str(self.limit)

    def try_acquire(self, purpose: CallPurpose) -> float:
        """Take a slot and return 0.0, or take nothing and return the seconds to wait."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            delay = self._delay(purpose, now)
            if delay > 0.0:
                return delay
            self._sent.add(now)
            if purpose is CallPurpose.SUBMISSION:
                self._submitted.add(now)
            return 0.0

    def _delay(self, purpose: CallPurpose, now: float) -> float:
        """Seconds until `purpose` may send (the lock held); 0.0 when it may now."""
        return window_delay(self.limit, purpose, self._sent, self._submitted, now)

    def acquire(self, purpose: CallPurpose, *, max_wait: float) -> bool:
        """Wait (at most `max_wait` s) for a slot; False when none came in time."""
        return acquire_within(self.try_acquire, purpose, max_wait, self._clock, self._sleep)

    def pause(self, seconds: float) -> None:
        """The service said 429 / Retry-After: nobody sends for `seconds` (never shortens)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))

    def wait_estimate(self, purpose: CallPurpose) -> float:
        """Seconds until a call of `purpose` could go (0.0 now); takes nothing."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            return self._delay(purpose, now)


_registry: dict[tuple[str, RateLimit], RateLimiter] = {}
_registry_lock = threading.Lock()


def shared_limiter(endpoint: str, limit: RateLimit) -> RateLimiter:
    """The process-wide limiter for `endpoint` at `limit` (created on first use)."""
    with _registry_lock:
        limiter = _registry.get((endpoint, limit))
        if limiter is None:
            limiter = _registry[(endpoint, limit)] = RateLimiter(limit)
        return limiter
