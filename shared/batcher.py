"""Forming and posting batches: queued jobs become one Speech job per group of recordings.

A run reads the queued jobs, groups them by submission properties (mono or stereo), and
posts each group of up to ``BATCH_MAX_FILES``. A group smaller than that waits until its
oldest job has queued for ``BATCH_WINDOW_SECONDS`` (the run asks for another run then).

Order, for crash safety (`shared.batches`): the batch record with its member keys, then
each member marked ``batched`` (conditional writes: a job another run took is left out),
then the POST, then the transcription id. `recover_posting` settles a batch whose run died
in between: the transcription found by displayName is adopted, else the members go back to
the queue. Nothing here deletes a member's outputs or another member's job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Final

from shared import batches, jobs
from shared.batch_admission import send_wakeup
from shared.batches import BatchRecord, BatchState, describe_batch
from shared.errors import (
    JobConflictError,
    SpeechAuthError,
    SpeechPermanentError,
    SpeechThrottledError,
    SpeechTransientError,
    redact_url,
)
from shared.jobs import JobRecord, JobState
from shared.rate_limit import CallPurpose
from shared.runtime import Runtime
from shared.submit import defer_delay, job_lease, submit_body

log = logging.getLogger(__name__)

__all__ = ["members_of", "recover_posting", "release_members", "run_batches"]

_WRITERS: Final = 8  # concurrent member writes (Table round trips)
# Concurrent member reads: a completion reads its batch's members before it writes anything,
# so these point reads are on every recording's path to its transcript.
_READERS: Final = 32
_run_lock = threading.Lock()


def run_batches(rt: Runtime) -> list[BatchRecord]:
    """Post the queued jobs as batches; returns the batches this run posted.

    One run at a time per process: a second wake-up waits and then sees the queue as the
    first left it, instead of splitting the same jobs into two half batches.
    """
    rt.ensure_resources()
    with _run_lock:
        return _run(rt)


def _run(rt: Runtime) -> list[BatchRecord]:
    s = rt.settings
    window = timedelta(seconds=s.batch_window_seconds)
    limiter = rt.speech.transport.limiter
    wait = limiter.wait_estimate(CallPurpose.SUBMISSION) if limiter is not None else 0.0
    if wait > 0.0:
        # No submission slot (the quota is busy, or a 429 paused everyone): forming a batch
        # now would only be undone. Come back when a POST could go.
        send_wakeup(rt, max(wait, s.batch_window_seconds))
        return []
    queued = rt.store.queued(limit=20 * s.batch_max_files)
    now = rt.clock()
    groups: dict[bool, list[JobRecord]] = {}
    for record in sorted(queued, key=lambda r: (r.updated, r.key)):
        groups.setdefault(record.channels == 1, []).append(record)
    posted: list[BatchRecord] = []
    wake_in: float | None = None
    for group in groups.values():
        for start in range(0, len(group), s.batch_max_files):
            chunk = group[start : start + s.batch_max_files]
            waited = now - chunk[0].updated
            if len(chunk) < s.batch_max_files and waited < window:
                # Not full and not old enough: another run comes when the oldest is due.
                left = (window - waited).total_seconds()
                wake_in = left if wake_in is None else min(wake_in, left)
                continue
            batch = form_batch(rt, chunk)
            if batch is not None:
                posted.append(batch)
    if wake_in is not None:
        send_wakeup(rt, wake_in)
    return posted


def form_batch(rt: Runtime, candidates: list[JobRecord]) -> BatchRecord | None:
    """Record a batch of `candidates`, take each into it, post it. None if none was free."""
    now = rt.clock()
    s = rt.settings
    lease = job_lease(rt)
    draft = batches.new_batch(
        [c.key for c in candidates],
        channels=1 if candidates[0].channels == 1 else 2,
        now=now,
        lease=lease,
        timeout=timedelta(hours=s.job_timeout_hours),
    )
    created = rt.batches.create(draft)
    if created is None:  # the same key twice means the same instant: another run has it
        return None
    batch = created

    def take(record: JobRecord) -> JobRecord | None:
        try:
            return rt.store.save(
                record, jobs.batched(record, now=now, batch_key=batch.key, lease=lease)
            )
        except JobConflictError:
            return None  # another run moved it first (batched it, rejected it...)

    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="batch") as pool:
        members = [m for m in pool.map(take, candidates) if m is not None]
    if not members:
        rt.batches.save(batch, batches.close(batch, now=rt.clock(), reason="no member left"))
        return None
    if len(members) < len(candidates):
        batch = rt.batches.save(
            batch, batches.with_members(batch, [m.key for m in members], now=rt.clock())
        )
    return _post(rt, batch, members)


def _post(rt: Runtime, batch: BatchRecord, members: list[JobRecord]) -> BatchRecord:
    now = rt.clock()
    urls = [rt.content_urls.url_for(m.container, m.blob_name, now=now) for m in members]
    body = submit_body(rt, display_name=batch.key, content_urls=urls, mono=batch.channels == 1)
    try:
        transcription = rt.speech.submit(body)
    except SpeechThrottledError as exc:
        # Nothing was created: the members go back to the queue for the next run.
        return _abandon(rt, batch, f"throttled: {exc}", retry_in=exc.retry_after)
    except SpeechAuthError as exc:
        log.error("%s: Speech refused the credentials: %s", describe_batch(batch), exc)
        return _abandon(rt, batch, f"credentials refused: {exc}", retry_in=600.0)
    except SpeechTransientError as exc:
        # The job may exist: the poller looks it up by displayName when this is due.
        until = rt.clock() + defer_delay(exc.retry_after, minimum=30.0)
        log.warning(
            "%s: POST outcome unknown (%s); looked up at %s",
            describe_batch(batch),
            exc,
            until.isoformat(timespec="seconds"),
        )
        return rt.batches.save(batch, batches.renew(batch, now=rt.clock(), until=until))
    except SpeechPermanentError as exc:
        # Something in the batch is refused: each recording goes on its own, so the one
        # at fault gets its own verdict and the others are not held back by it.
        log.warning(
            "%s: rejected (%s); its recordings are submitted one by one", describe_batch(batch), exc
        )
        release_members(rt, batch, singly=True)
        return rt.batches.save(batch, batches.close(batch, now=rt.clock(), reason=str(exc)))
    return record_posted(rt, batch, transcription.id, transcription.self_url)


def record_posted(
    rt: Runtime, batch: BatchRecord, transcription_id: str, self_url: str
) -> BatchRecord:
    """Store the batch's transcription (its members stay ``batched``)."""
    url = redact_url(self_url)
    new = batches.posted(
        batch,
        now=rt.clock(),
        transcription_id=transcription_id,
        transcription_url=url,
        first_check=timedelta(seconds=rt.settings.poll_min_interval_seconds),
    )
    try:
        saved = rt.batches.save(batch, new)
    except JobConflictError:
        log.warning(
            "%s: lost the batch while posting; deleting %s", describe_batch(batch), transcription_id
        )
        rt.speech.delete(transcription_id)
        raise
    log.info("%s: submitted as %s", describe_batch(saved), url)
    return saved


def _abandon(
    rt: Runtime, batch: BatchRecord, reason: str, *, retry_in: float | None
) -> BatchRecord:
    release_members(rt, batch)
    closed = rt.batches.save(batch, batches.close(batch, now=rt.clock(), reason=reason))
    log.warning(
        "%s: not posted (%s); its recordings are queued again", describe_batch(batch), reason
    )
    send_wakeup(rt, max(retry_in or 0.0, rt.settings.batch_window_seconds))
    return closed


def members_of(rt: Runtime, keys: Iterable[str]) -> list[JobRecord]:
    """The job records of `keys` that exist (read several at a time)."""
    wanted = list(keys)
    if not wanted:
        return []
    with ThreadPoolExecutor(
        max_workers=min(_READERS, len(wanted)), thread_name_prefix="batch-read"
    ) as pool:
        return [r for r in pool.map(rt.store.get, wanted) if r is not None]


def release_members(rt: Runtime, batch: BatchRecord, *, singly: bool = False) -> None:
    """Members still in `batch` go back to the queue (or, `singly`, are deferred to be
    submitted one by one, due now). Conflicts mean another run moved a member: fine."""
    now = rt.clock()

    def release(record: JobRecord) -> None:
        if record.state is not JobState.BATCHED or record.batch_key != batch.key:
            return
        new = (
            jobs.defer(
                record,
                now=now,
                until=now,
                reason_code="BatchRejected",
                reason="its batch was refused; submitted on its own",
            )
            if singly
            else jobs.unbatch(record, now=now)
        )
        try:
            rt.store.save(record, new)
        except JobConflictError:
            log.info("%s: moved by another run while leaving %s", jobs.describe(record), batch.key)

    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="batch") as pool:
        list(pool.map(release, members_of(rt, batch.members)))


def recover_posting(rt: Runtime, batch: BatchRecord) -> BatchRecord:
    """A ``posting`` batch whose run died or did not learn the POST's outcome: adopt the
    transcription named after it, or give its members back to the queue."""
    if batch.state is not BatchState.POSTING:
        return batch
    found = rt.speech.find_by_display_name(batch.key)
    usable = [t for t in found if t.status != "Failed"]
    for extra in [t for t in found if t.status == "Failed"] + usable[1:]:
        log.info("%s: deleting leftover transcription %s", describe_batch(batch), extra.id)
        rt.speech.delete(extra.id)
    if usable:
        log.info(
            "%s: found transcription %s from an earlier run; adopted",
            describe_batch(batch),
            usable[0].id,
        )
        return record_posted(rt, batch, usable[0].id, usable[0].self_url)
    return _abandon(rt, batch, "never posted", retry_in=None)
