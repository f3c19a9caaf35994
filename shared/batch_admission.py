"""The adaptive rule: submit a recording on its own now, or queue it to share a Speech job.

A lone recording is submitted at once (trickle latency stays as it was). Recordings are
queued for a batch only while they arrive faster than they can be submitted singly: no
submission slot is free under the client's rate limit now, Speech answered 429, the trigger
ran more than `BACKLOG_LAG_S` after the upload (the host is working through a backlog), or
this process queued one within the last two windows (a backlog is building: sending singles in
between would spend the quota three requests at a time that a batch spends once).

Queued jobs need a batch run within ``BATCH_WINDOW_SECONDS``: the first job this process
queues sends a wake-up message (``{"batch_run": ...}`` on the completion queue, invisible
for the window), and the ``BATCH_MAX_FILES``-th sends one that is visible at once. The
poller forms batches for queued jobs whose wake-up was lost (their ``next_check_at``).

The process-local memory here is only a hint: losing it (a restart) costs at most a few
singles or one extra wake-up, never a job.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from shared import jobs
from shared.batch_messages import BATCH_RUN_KEY
from shared.jobs import JobRecord
from shared.rate_limit import CallPurpose
from shared.runtime import Runtime
from shared.storage import storage_errors

log = logging.getLogger(__name__)

__all__ = [
    "BACKLOG_LAG_S",
    "Admission",
    "admission",
    "batching_enabled",
    "queue_job",
    "send_wakeup",
    "submit_singly",
]

# A recording whose trigger ran this long after its upload shows the host is behind.
BACKLOG_LAG_S: Final = 10.0
# A queued job the wake-ups missed is batched by the poller after this many windows.
_SAFETY_NET_WINDOWS: Final = 3


def batching_enabled(rt: Runtime) -> bool:
    """True unless BATCH_MAX_FILES is 1 (every recording its own job, as before batching)."""
    return rt.settings.batch_max_files > 1


@dataclass
class Admission:
    """What this process remembers about arrivals (monotonic seconds)."""

    last_queued: float = -math.inf
    wake_visible_at: float = -math.inf
    queued_since_wake: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def reset(self) -> None:
        """Forget every arrival (a fresh process; tests)."""
        with self.lock:
            self.last_queued = self.wake_visible_at = -math.inf
            self.queued_since_wake = 0


_admission = Admission()


def admission() -> Admission:
    """The process-wide admission memory (tests may reset it)."""
    return _admission


def submit_singly(
    rt: Runtime, *, trigger_lag_s: float | None = None, now: float | None = None
) -> bool:
    """True when a new recording should be submitted on its own right now.

    `trigger_lag_s`: how long the recording sat in the container before its trigger ran.
    A host that is behind (a burst the triggers work through a few a second) is a backlog
    even when each trigger finds a submission slot free: sending those singly would spend
    three requests a recording on what a batch does for a few per hundred.
    """
    if not batching_enabled(rt):
        return True
    if trigger_lag_s is not None and trigger_lag_s > BACKLOG_LAG_S:
        return False
    now = time.monotonic() if now is None else now
    with _admission.lock:
        if now - _admission.last_queued < 2 * rt.settings.batch_window_seconds:
            return False
    limiter = rt.speech.transport.limiter
    return limiter is None or limiter.wait_estimate(CallPurpose.SUBMISSION) == 0.0


def queue_job(rt: Runtime, record: JobRecord) -> JobRecord:
    """Queue `record` (held by this run, input checked) for a batch and make sure one runs."""
    now = rt.clock()
    window = rt.settings.batch_window_seconds
    saved = rt.store.save(
        record,
        jobs.queue(record, now=now, until=now + timedelta(seconds=_SAFETY_NET_WINDOWS * window)),
    )
    log.info(
        "%s: queued to share a Speech job (arrivals outpace single submissions)",
        jobs.describe(saved),
    )
    mono_now = time.monotonic()
    with _admission.lock:
        _admission.last_queued = mono_now
        _admission.queued_since_wake += 1
        if _admission.queued_since_wake >= rt.settings.batch_max_files:
            delay = 0.0  # a full batch is waiting: run now
        elif _admission.wake_visible_at < mono_now:
            delay = window  # nothing pending from this process: run when the window closes
        else:
            return saved
        _admission.queued_since_wake = 0
        _admission.wake_visible_at = mono_now + delay
    send_wakeup(rt, delay)
    return saved


def send_wakeup(rt: Runtime, delay_s: float) -> None:
    """Ask for a batch run in `delay_s` s (a completion-queue message invisible till then)."""
    body = json.dumps({BATCH_RUN_KEY: rt.clock().isoformat()})
    with storage_errors("enqueue batch run"):
        rt.completion_queue.send_message(body, visibility_timeout=max(0, math.ceil(delay_s)))
    log.debug("batch run requested in %.1f s", delay_s)
