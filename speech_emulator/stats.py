"""Counters for ``GET /_emulator/stats``: requests, downloads, callbacks, job timelines,
input files and the busiest window of Speech calls.

Job timelines outlive the jobs (an app deletes its jobs once done), so a benchmark can
still read when each job was created, started and finished.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from speech_emulator.call_log import CallLog
from speech_emulator.timefmt import iso_timestamp_ms


class Stats:
    """Thread-safe counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._downloads: Counter[str] = Counter()
        self._webhooks: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._events: Counter[str] = Counter()
        self._timelines: dict[str, dict[str, Any]] = {}
        self._files: Counter[str] = Counter()
        self._calls = CallLog()

    def call_arrived(self) -> None:
        """Note the arrival time of one Speech API call (every call `request` counts)."""
        self._calls.record()

    def request(self, route: str, status: int) -> None:
        """Count one Speech API answer under its route template, e.g. ``GET /speechtotext/...``."""
        with self._lock:
            self._requests[route][str(status)] += 1

    def download(self, status: int) -> None:
        """Count one download of a file's contentUrl (not a Speech API call)."""
        with self._lock:
            self._downloads[str(status)] += 1

    def webhook(self, event: str, outcome: str) -> None:
        """Count one callback attempt (outcome: HTTP status or an error name)."""
        with self._lock:
            self._webhooks[event][outcome] += 1

    def event(self, name: str) -> None:
        """Count a job event (created, succeeded, failed, vanished, deleted, expired)."""
        with self._lock:
            self._events[name] += 1

    def file(self, outcome: str) -> None:
        """Count one input file that left its slot (``succeeded`` or ``failed``)."""
        with self._lock:
            self._files[outcome] += 1

    def job(self, job_id: str, display_name: str, **moments: datetime | str | None) -> None:
        """Record or update a job's timeline (created/started/finished, status)."""
        with self._lock:
            entry = self._timelines.setdefault(
                job_id,
                {"displayName": display_name, "created": None, "started": None, "finished": None},
            )
            for key, value in moments.items():
                entry[key] = iso_timestamp_ms(value) if isinstance(value, datetime) else value

    def snapshot(
        self, live: dict[str, int], capacity: dict[str, int], window_s: float
    ) -> dict[str, Any]:
        """The JSON document of ``GET /_emulator/stats``.

        ``capacity``: the runner's slots (limit, running, waiting); ``window_s``: the window
        length of ``max_calls_per_window``.
        """
        busiest = self._calls.busiest(window_s)
        window_end = None
        if busiest.end is not None:
            # Arrival times are monotonic; shown as wall-clock time for people.
            wall = time.time() - (time.monotonic() - busiest.end)
            window_end = iso_timestamp_ms(datetime.fromtimestamp(wall, UTC))
        with self._lock:
            requests = {route: dict(c) for route, c in sorted(self._requests.items())}
            return {
                "requests": requests,
                "requestsTotal": sum(sum(c.values()) for c in self._requests.values()),
                "contentDownloads": dict(self._downloads),
                "webhookDeliveries": {e: dict(c) for e, c in self._webhooks.items()},
                "transcriptions": {
                    "live": sum(live.values()),
                    "liveByStatus": live,
                    "events": dict(self._events),
                },
                "jobs": {k: dict(v) for k, v in self._timelines.items()},
                "files": {**capacity, "done": dict(self._files)},
                "max_calls_per_window": {
                    "window_s": busiest.window_s,
                    "max": busiest.max,
                    "window_end": window_end,
                    "exact": busiest.exact,
                    "calls": busiest.calls,
                },
            }

    def reset(self) -> None:
        """Zero everything."""
        with self._lock:
            self._requests.clear()
            self._downloads.clear()
            self._webhooks.clear()
            self._events.clear()
            self._timelines.clear()
            self._files.clear()
        self._calls.reset()
