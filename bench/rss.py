"""Peak resident memory of a process tree, sampled in a background thread with psutil."""

from __future__ import annotations

import contextlib
import threading

import psutil

MB = 1024 * 1024


def tree_rss(pid: int) -> int:
    """Bytes resident in `pid` and all its descendants now (0 once it has exited)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # a child may exit between listing and reading
            total += process.memory_info().rss
    return total


class PeakRss:
    """Samples a process tree's RSS every `interval` s; `peak_mb` is the highest seen.

    `mark()` starts a new window (the memory check measures one recording at a time)
    while `overall_mb` keeps the peak since the start.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._pid = pid
        self._interval = interval
        self._lock = threading.Lock()
        self._window_peak = 0
        self._overall_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            rss = tree_rss(self._pid)
            with self._lock:
                self._window_peak = max(self._window_peak, rss)
                self._overall_peak = max(self._overall_peak, rss)
            if self._stop.wait(self._interval):
                return

    def mark(self) -> None:
        """Start a new measuring window."""
        with self._lock:
            self._window_peak = tree_rss(self._pid)

    @property
    def peak_mb(self) -> float:
        """Highest RSS (MB) since the last `mark()` (or the start)."""
        with self._lock:
            return round(self._window_peak / MB, 1)

    @property
    def overall_mb(self) -> float:
        """Highest RSS (MB) since the start."""
        with self._lock:
            return round(self._overall_peak / MB, 1)
