"""In-memory state of the emulator: transcription jobs and web hooks, behind one lock.

Handlers (event loop) and the job runner (worker threads) both touch jobs, so every access
goes through this class. Time-to-live is enforced lazily: expired jobs are purged whenever
jobs are read, scanning only once the soonest possible expiry has come (a burst of 10,000
live jobs must not cost a scan per API call).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from speech_emulator.clock import Clock
from speech_emulator.jobs import Fate, Job, JobSpec
from speech_emulator.validation import TTL_HOURS_RANGE

# No job can expire sooner than this after a scan: one finishing later lives at least this.
_MIN_TTL = timedelta(hours=TTL_HOURS_RANGE[0])

T = TypeVar("T")


@dataclass
class WebHook:
    """A web hook registration (the secret is kept to sign callbacks, never returned)."""

    id: str
    display_name: str
    web_url: str
    events: dict[str, bool]
    created: datetime
    api_version: str
    description: str | None = None
    secret: str | None = None
    custom_properties: dict[str, str] = field(default_factory=dict)
    status: str = "NotStarted"
    last_action: datetime | None = None
    error: tuple[str, str] | None = None

    def wants(self, event: str) -> bool:
        """True when the hook is active and registered for ``event`` (camelCase name)."""
        return self.status == "Succeeded" and bool(self.events.get(event))


class Store:
    """Jobs and web hooks. All methods are thread-safe."""

    def __init__(self, clock: Clock, on_expire: Callable[[Job], None] | None = None) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._hooks: dict[str, WebHook] = {}
        self._on_expire = on_expire
        self._next_purge: datetime | None = None  # no job can have expired before then

    # --- jobs ---------------------------------------------------------------------------

    def add_job(self, spec: JobSpec, fate: Fate) -> Job:
        """Create a NotStarted job."""
        now = self._clock.now()
        job = Job(id=str(uuid.uuid4()), spec=spec, created=now, last_action=now, fate=fate)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def _purge(self) -> None:
        now = self._clock.now()
        if self._next_purge is not None and now < self._next_purge:
            return
        expired = []
        soonest = now + _MIN_TTL
        for job in self._jobs.values():
            expires = job.expires_at()
            if expires is not None and expires <= now:
                expired.append(job)
            elif expires is not None:
                soonest = min(soonest, expires)
        self._next_purge = soonest
        for job in expired:
            del self._jobs[job.id]
            if self._on_expire:
                self._on_expire(job)

    def get_job(self, job_id: str) -> Job | None:
        """The job, or None when it does not exist (deleted, expired, vanished)."""
        with self._lock:
            self._purge()
            return self._jobs.get(job_id.lower())

    def jobs(self) -> list[Job]:
        """All live jobs in creation order."""
        with self._lock:
            self._purge()
            return list(self._jobs.values())

    def delete_job(self, job_id: str) -> Job | None:
        """Remove a job; returns it, or None when it was already gone."""
        with self._lock:
            return self._jobs.pop(job_id.lower(), None)

    def update_job(self, job_id: str, change: Callable[[Job], T]) -> T | None:
        """Run ``change`` on the live job under the lock; None when the job is gone."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return change(job)

    def count_jobs(self) -> dict[str, int]:
        """Live jobs by status."""
        with self._lock:
            self._purge()
            counts: dict[str, int] = {}
            for job in self._jobs.values():
                counts[job.status.value] = counts.get(job.status.value, 0) + 1
            return counts

    # --- web hooks ----------------------------------------------------------------------

    def add_hook(self, hook: WebHook) -> None:
        """Register a web hook."""
        with self._lock:
            self._hooks[hook.id] = hook

    def get_hook(self, hook_id: str) -> WebHook | None:
        """A web hook, or None."""
        with self._lock:
            return self._hooks.get(hook_id.lower())

    def hooks(self) -> list[WebHook]:
        """All web hooks in creation order."""
        with self._lock:
            return list(self._hooks.values())

    def delete_hook(self, hook_id: str) -> WebHook | None:
        """Remove a web hook; None when it did not exist."""
        with self._lock:
            return self._hooks.pop(hook_id.lower(), None)

    def update_hook(self, hook_id: str, change: Callable[[WebHook], Any]) -> WebHook | None:
        """Run ``change`` on a web hook under the lock; None when it does not exist."""
        with self._lock:
            hook = self._hooks.get(hook_id.lower())
            if hook is not None:
                change(hook)
            return hook

    def clear(self) -> None:
        """Forget everything (admin reset)."""
        with self._lock:
            self._jobs.clear()
            self._hooks.clear()
            self._next_purge = None
