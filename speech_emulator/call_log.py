"""When Speech calls arrived, to find the busiest sliding window afterwards.

A quota test runs several app processes against one emulator and asserts they stayed
under the resource's limit together: "at most N calls in any W seconds". That needs the
maximum over every window of length W, not a sample, so it is computed from the calls'
arrival times.

Memory stays bounded two ways. Every window length asked for (the configured one from the
start) gets a tracker that keeps only the calls of its last W seconds and the best count so
far, so its answer is exact however long the run. The raw arrival times, from which a new
window length's answer is computed the first time it is asked for, are kept up to
`HISTORY_LIMIT` calls (8 bytes each); past that the oldest are dropped and a window first
asked for later says ``"exact": false``.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass

import numpy as np

HISTORY_LIMIT = 1_000_000
MAX_TRACKERS = 16  # distinct window lengths followed online; more are computed, not kept


@dataclass(frozen=True)
class Busiest:
    """The most calls seen in any window of ``window_s`` seconds."""

    window_s: float
    max: int
    end: float | None  # arrival time (time.monotonic) of the window's last call
    exact: bool  # False when calls older than the kept history could have mattered
    calls: int  # all calls counted since the start (or reset)


class _Tracker:
    """Online maximum for one window length: calls of the last W seconds and the best count."""

    def __init__(self, window_s: float, best: int, end: float | None, exact: bool) -> None:
        self.window_s = window_s
        self.recent: deque[float] = deque()
        self.best = best
        self.end = end
        self.exact = exact

    def add(self, t: float) -> None:
        # Window (t - W, t], as the rate limiter counts: a call exactly W seconds older
        # is out.
        self.recent.append(t)
        while self.recent[0] <= t - self.window_s:
            self.recent.popleft()
        if len(self.recent) > self.best:
            self.best, self.end = len(self.recent), t


def busiest_in(times: np.ndarray, window_s: float) -> tuple[int, float | None]:
    """Most of the sorted ``times`` in any window (t - W, t], and that window's end."""
    if len(times) == 0:
        return 0, None
    first = np.searchsorted(times, times - window_s, side="right")
    counts = np.arange(1, len(times) + 1) - first
    best = int(np.argmax(counts))
    return int(counts[best]), float(times[best])


class CallLog:
    """Arrival times of Speech calls; thread-safe."""

    def __init__(self, history_limit: int = HISTORY_LIMIT) -> None:
        self._lock = threading.Lock()
        self._limit = history_limit
        self._history: array[float] = array("d")
        self._dropped = 0
        self._trackers: dict[float, _Tracker] = {}
        self.total = 0

    def record(self, at: float | None = None) -> None:
        """Count one call arriving now (``at``: a time.monotonic value, for tests)."""
        with self._lock:
            t = time.monotonic() if at is None else at
            self.total += 1
            self._history.append(t)
            if len(self._history) > self._limit:
                cut = max(1, self._limit // 4)  # drop in chunks, not one call at a time
                del self._history[:cut]
                self._dropped += cut
            for tracker in self._trackers.values():
                tracker.add(t)

    def busiest(self, window_s: float) -> Busiest:
        """The most calls in any ``window_s``-second window since the start (or reset)."""
        with self._lock:
            tracker = self._trackers.get(window_s)
            if tracker is None:
                # A copy: a view would pin the array's buffer and forbid further appends.
                times = np.array(self._history, dtype=np.float64)
                best, end = busiest_in(times, window_s)
                tracker = _Tracker(window_s, best, end, exact=self._dropped == 0)
                if len(self._trackers) < MAX_TRACKERS:
                    # Seed the online window with the calls still inside it.
                    if len(times):
                        last = times[-1]
                        tracker.recent.extend(float(t) for t in times[times > last - window_s])
                    self._trackers[window_s] = tracker
            return Busiest(window_s, tracker.best, tracker.end, tracker.exact, self.total)

    def reset(self) -> None:
        """Forget all calls (admin reset); window lengths asked for stay followed."""
        with self._lock:
            self._history = array("d")
            self._dropped = 0
            self.total = 0
            for window_s in list(self._trackers):
                self._trackers[window_s] = _Tracker(window_s, 0, None, exact=True)
