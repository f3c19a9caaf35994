"""The poller's part for batches: one status per batch, whatever its number of recordings.

A batch's transcription is polled like a single job's (the same listing page or GET, see
`shared.poll`); a finished batch moves to ``completing`` and THEN one completion message
``{"batch_key": ...}`` is enqueued for all its recordings. A batch whose transcription
vanished gives its recordings back to the queue. Queued jobs whose wake-up was lost and
batched jobs whose batch record never appeared are put right here too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from shared import batches, jobs
from shared.batch_messages import Send, batch_completion_body
from shared.batcher import members_of, recover_posting, release_members, run_batches
from shared.batches import BatchRecord, BatchState, describe_batch
from shared.errors import JobConflictError
from shared.jobs import JobRecord, JobState
from shared.outcomes import fail_job
from shared.runtime import Runtime
from shared.storage import storage_errors
from shared.submit import job_lease

if TYPE_CHECKING:
    from shared.speech_models import Transcription

log = logging.getLogger(__name__)

__all__ = [
    "apply_batch_status",
    "enqueue_batch_completion",
    "mark_batch_finished",
    "poll_batch",
    "settle_strays",
]


def poll_batch(rt: Runtime, batch: BatchRecord) -> None:
    """A due batch that needs no status: recover a posting one, re-enqueue a completion,
    or time it out."""
    now = rt.clock()
    if now >= batch.deadline:
        _time_out(rt, batch)
    elif batch.state is BatchState.POSTING:
        recover_posting(rt, batch)
    elif batch.state is BatchState.COMPLETING:
        saved = rt.batches.save(batch, batches.renew(batch, now=now, until=now + job_lease(rt)))
        log.warning(
            "%s: completion did not finish within its lease; enqueued again", describe_batch(saved)
        )
        enqueue_batch_completion(rt, saved)


def apply_batch_status(
    rt: Runtime, batch: BatchRecord, transcription: Transcription | None
) -> None:
    """What the service says about a submitted batch (None: it no longer has it)."""
    now = rt.clock()
    if transcription is None:
        log.warning(
            "%s: transcription %s is gone from the service; recordings queued again",
            describe_batch(batch),
            batch.transcription_id,
        )
        release_members(rt, batch)
        rt.batches.save(batch, batches.close(batch, now=now, reason="vanished"))
        return
    if transcription.status.is_terminal:
        mark_batch_finished(rt, batch, transcription)
        return
    if batch.service_status != transcription.status or batch.next_check_at is None:
        gap = timedelta(seconds=rt.settings.poll_min_interval_seconds)
        rt.batches.save(
            batch,
            batches.observed(
                batch, now=now, service_status=str(transcription.status), next_check_at=now + gap
            ),
        )


def mark_batch_finished(
    rt: Runtime, batch: BatchRecord, transcription: Transcription, *, send: Send | None = None
) -> BatchRecord:
    """Move the batch to ``completing`` (conditional write), then enqueue its completion
    (or hand the message to `send`, a function's queue output)."""
    saved = rt.batches.save(
        batch,
        batches.finished(
            batch,
            now=rt.clock(),
            service_status=str(transcription.status),
            lease=job_lease(rt),
            error_code=transcription.error_code or "",
            error_message=transcription.error_message or "",
        ),
    )
    enqueue_batch_completion(rt, saved, send=send)
    return saved


def enqueue_batch_completion(rt: Runtime, batch: BatchRecord, *, send: Send | None = None) -> None:
    """Send ``{"batch_key": ...}`` to the completion queue, or hand it to `send`."""
    how = send_completion(rt, batch_completion_body(batch.key), send, what="batch completion")
    log.info("%s: completion %s (%s)", describe_batch(batch), how, batch.service_status)


def send_completion(rt: Runtime, body: str, send: Send | None, *, what: str) -> str:
    """Send a completion message to the queue, or hand it to `send` (a function's queue
    output); returns which, for the log."""
    if send is not None:
        send(body)
        return "handed to the queue output"
    with storage_errors(f"enqueue {what}"):
        rt.completion_queue.send_message(body)
    return "enqueued"


def settle_strays(
    rt: Runtime, due: Iterable[JobRecord], active_batches: Iterable[BatchRecord]
) -> int:
    """Queued jobs past their safety net get a batch run; batched jobs whose batch is not
    active (its creator died before recording it) go back to the queue. Returns how many
    jobs were moved or batched."""
    live = {b.key for b in active_batches}
    due = list(due)
    moved = 0
    now = rt.clock()
    for record in due:
        if record.state is JobState.BATCHED and record.batch_key not in live:
            try:
                rt.store.save(record, jobs.unbatch(record, now=now))
                moved += 1
            except JobConflictError:
                pass
    if any(r.state is JobState.QUEUED for r in due) or moved:
        moved += sum(len(b.members) for b in run_batches(rt))
    return moved


def _time_out(rt: Runtime, batch: BatchRecord) -> None:
    """The batch outlived JOB_TIMEOUT_HOURS: its remaining recordings fail, its job goes."""
    hours = rt.settings.job_timeout_hours
    for record in members_of(rt, batch.members):
        if record.state is JobState.BATCHED and record.batch_key == batch.key:
            fail_job(
                rt,
                record,
                reason_code="TimedOut",
                message=(
                    f"the job did not finish within JOB_TIMEOUT_HOURS ({hours:g} h); its "
                    f"batch was {batch.state} (service status {batch.service_status or '?'})"
                ),
            )
    if batch.transcription_id:
        rt.speech.delete(batch.transcription_id)
    rt.batches.save(batch, batches.close(batch, now=rt.clock(), reason="timed out"))
