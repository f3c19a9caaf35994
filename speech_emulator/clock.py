"""The emulator's clock: real time plus an offset that the admin API can advance.

Everything time-dependent (job start delays, processing time, time-to-live, content URL
expiry) reads this clock, so a test can jump hours ahead instead of waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time shifted by an adjustable offset; thread-safe."""

    def __init__(self, source: Callable[[], datetime] | None = None) -> None:
        self._source = source or (lambda: datetime.now(UTC))
        self._offset = timedelta()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The emulator's current time (UTC, aware)."""
        with self._lock:
            offset = self._offset
        return self._source() + offset

    def timestamp(self) -> float:
        """The emulator's current time as POSIX seconds."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        """Jump ahead; wakes whoever waits for a deadline (the job scheduler)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = timedelta()

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every :meth:`advance`."""
        with self._lock:
            self._listeners.append(listener)
