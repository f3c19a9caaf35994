"""Sliding-window rates: the ``N/SECONDS`` form and the window of calls that enforces one.

Pure and standard-library only, so that both sides of the Speech quota count calls the same
way from one implementation: the app's client-side limiter (`shared.rate_limit`, which adds
priorities and a shared pause on top) and the Speech emulator's 429 limit
(`speech_emulator.faults`, which imports this module). Neither the parser nor the window
knows what a call is for; they only answer "how many per how long" and "how long until the
window has room".

`SlidingWindow` takes no lock: each owner already holds one around its own decision (the
app's limiter checks two windows as one step), so a lock here would only be taken twice.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Self

__all__ = ["Rate", "SlidingWindow"]

_RATE_RE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*$")
# A full window answers at least this: a waiter then sleeps a millisecond instead of
# spinning on a slot that frees within nanoseconds (0.0 always means "room now").
_MIN_WAIT_S: Final = 1e-3


@dataclass(frozen=True)
class Rate:
    """`calls` per sliding window of `per_seconds` seconds (the Speech S0 tier: 100 per 10)."""

    calls: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per_seconds <= 0:
            raise ValueError(
                f"a rate needs at least 1 call per a positive number of seconds, "
                f"got {self.calls}/{self.per_seconds:g}"
            )

    @classmethod
    def parse(cls, text: str) -> Self:
        """``"90/10"`` -> 90 calls per 10 s (spaces allowed around the numbers).

        Raises ValueError naming the expected form for anything else.
        """
        match = _RATE_RE.match(text)
        if match is None or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            raise ValueError(
                f"{text!r} is not N/SECONDS with at least 1 call per a positive number of "
                "seconds, e.g. 90/10 (90 calls per 10 s)"
            )
        return cls(int(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.calls}/{self.per_seconds:g}"


class SlidingWindow:
    """The times of recent calls; answers how long until fewer than a cap remain.

    Times are seconds on any monotonic clock the owner chooses; the window length is given
    with each question, so an owner whose limit changes at run time keeps one window.
    """

    def __init__(self, times: Iterable[float] = ()) -> None:
        self._times: deque[float] = deque(sorted(times))

    def wait(self, now: float, *, cap: int, per_seconds: float) -> float:
        """Seconds until the last `per_seconds` hold fewer than `cap` calls; 0.0: room now.

        Calls that have left the window are forgotten on the way.
        """
        horizon = now - per_seconds
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        if len(self._times) < cap:
            return 0.0
        # A slot frees when the call `cap`-th from the end leaves the window.
        return max(self._times[len(self._times) - cap] - horizon, _MIN_WAIT_S)

    def add(self, now: float) -> None:
        """Count a call made at `now`."""
        self._times.append(now)

    def clear(self) -> None:
        """Forget every call."""
        self._times.clear()

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[float]:
        """The remembered call times, oldest first (a shared budget stores them)."""
        return iter(self._times)
