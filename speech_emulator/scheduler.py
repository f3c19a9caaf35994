"""Run callables at given emulator times, on one background thread.

Deadlines are in emulator time (see `Clock`), so advancing the clock makes due work run
at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from speech_emulator.clock import Clock

log = logging.getLogger(__name__)


class Scheduler:
    """A timer thread with a priority queue of (due time, action)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        clock.on_advance(self.wake)

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer thread; pending actions are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Re-check deadlines now (after the clock moved)."""
        with self._cond:
            self._cond.notify_all()

    def at(self, due: float, action: Callable[[], None]) -> None:
        """Run ``action`` once the emulator clock reaches ``due`` (POSIX seconds)."""
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), action))
            self._cond.notify_all()

    def clear(self) -> None:
        """Drop all pending actions."""
        with self._cond:
            self._heap.clear()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = self._clock.timestamp()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = (self._heap[0][0] - now) if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, action = heapq.heappop(self._heap)
            try:
                action()
            except Exception:  # the timer thread must survive a failing action
                log.exception("scheduled action failed")
