"""Counters for ``GET /_emulator/stats``: requests, downloads, callbacks, job timelines.

Job timelines outlive the jobs (an app deletes its jobs once done), so a benchmark can
still read when each job was created, started and finished.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

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

    def job(self, job_id: str, display_name: str, **moments: datetime | str | None) -> None:
        """Record or update a job's timeline (created/started/finished, status)."""
        with self._lock:
            entry = self._timelines.setdefault(
                job_id,
                {"displayName": display_name, "created": None, "started": None, "finished": None},
            )
            for key, value in moments.items():
                entry[key] = iso_timestamp_ms(value) if isinstance(value, datetime) else value

    def snapshot(self, live: dict[str, int]) -> dict[str, Any]:
        """The JSON document of ``GET /_emulator/stats``."""
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
            }

    def reset(self) -> None:
        """Zero everything."""
        with self._lock:
            self._requests.clear()
            self._downloads.clear()
            self._webhooks.clear()
            self._events.clear()
            self._timelines.clear()
