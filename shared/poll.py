"""The poller: one table query for the active jobs, then the least Speech traffic that works.

Each run: jobs past their deadline are timed out; due submitted/running jobs get their
status — by paging ``GET /transcriptions`` (100 per request) when more than
``POLL_LIST_THRESHOLD`` need one, else by individual GETs with bounded concurrency; finished
jobs move to `completing` (conditional write) and THEN their completion is enqueued;
completions whose lease ran out are enqueued again; received/deferred jobs that are due are
(re)submitted. A job is never asked about before its ``next_check_at`` (Retry-After, or
``POLL_MIN_INTERVAL_SECONDS`` after submission).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from shared import jobs
from shared.batch_admission import batching_enabled
from shared.batch_messages import Send
from shared.batch_poll import apply_batch_status, poll_batch, send_completion, settle_strays
from shared.batches import BatchRecord, BatchState, describe_batch
from shared.errors import (
    JobConflictError,
    SpeechNotFoundError,
    SpeechServiceError,
    SpeechThrottledError,
    StorageTransientError,
)
from shared.jobs import JobRecord, JobState
from shared.outcomes import fail_job, resubmit_vanished
from shared.runtime import Runtime
from shared.speech_client import description_filter
from shared.submit import THROTTLED_CODE, found_late, job_lease, resume_job

if TYPE_CHECKING:
    from shared.speech_models import Transcription

log = logging.getLogger(__name__)

__all__ = ["PollReport", "enqueue_completion", "mark_finished", "poll"]

_PAGE_SIZE: Final = 100
# Resubmissions per poller run when no rate limit is set (else one window's share).
_MAX_RESUBMITS_UNLIMITED: Final = 200
# Sweep-found recordings queued for batches per run, and how many side by side (each is a
# few Table and Blob round trips: claim, header check, queue; no Speech call).
_MAX_LATE_PER_RUN: Final = 500
_LATE_WORKERS: Final = 8


@dataclass
class PollReport:
    """What one poller run did (logged, and handy in tests)."""

    active: int = 0
    checked: int = 0
    finished: list[str] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    resubmitted: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    errors: int = 0


_report_lock = threading.Lock()


@dataclass(frozen=True)
class _Status:
    transcription: Transcription | None  # None: the service no longer has it (404)
    retry_after: float | None = None


def poll(rt: Runtime) -> PollReport:
    """One poller run over every active job."""
    rt.ensure_resources()
    report = PollReport()
    active = rt.store.active()
    report.active = len(active)
    now = rt.clock()
    current: list[JobRecord] = []
    for record in active:
        if jobs.is_past_deadline(record, now):
            _guard(report, record, functools.partial(_time_out, rt, record, report))
        else:
            current.append(record)
    due = [r for r in current if jobs.is_due(r, now)]
    to_check = [r for r in due if r.state in (JobState.SUBMITTED, JobState.RUNNING)]
    active_batches = rt.batches.active()
    batches_to_check = [
        b
        for b in active_batches
        if b.state is BatchState.SUBMITTED
        and (b.next_check_at is None or b.next_check_at <= now)
        and now < b.deadline
    ]
    # A batch counts as the recordings it holds against POLL_LIST_THRESHOLD: one listing
    # page then covers every batch (and job) in flight instead of one GET each.
    weight = len(to_check) + sum(len(b.members) for b in batches_to_check)
    ids = [r.transcription_id for r in to_check + batches_to_check]
    statuses = _statuses(rt, ids, report, weight=weight)
    steps: list[tuple[JobRecord | BatchRecord, Callable[[], object]]] = [
        (record, functools.partial(_apply, rt, record, statuses[record.transcription_id], report))
        for record in to_check
        if record.transcription_id in statuses
    ]
    steps += [
        (record, functools.partial(_reenqueue, rt, record, report))
        for record in due
        if record.state is JobState.COMPLETING
    ]
    # Batches: one status each, however many recordings they hold (`shared.batch_poll`).
    steps += [
        (batch, functools.partial(_apply_batch, rt, batch, statuses[batch.transcription_id]))
        for batch in batches_to_check
        if batch.transcription_id in statuses
    ]
    steps += [
        (batch, functools.partial(poll_batch, rt, batch))
        for batch in active_batches
        if batch.state is not BatchState.SUBMITTED or now >= batch.deadline
        if batch.next_check_at is None or batch.next_check_at <= now or now >= batch.deadline
    ]
    # Each step is a table write and maybe an enqueue: run them a few at a time, so a poll
    # that finds a thousand finished jobs hands them over in seconds, not minutes.
    workers = max(1, min(rt.settings.speech_max_concurrency, len(steps)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll-apply") as pool:
        list(pool.map(lambda step: _guard(report, *step), steps))
    _resubmit(rt, [r for r in due if r.state in (JobState.RECEIVED, JobState.DEFERRED)], report)
    strays = [r for r in due if r.state in (JobState.QUEUED, JobState.BATCHED)]
    if strays:
        _guard(report, strays[0], functools.partial(settle_strays, rt, strays, active_batches))
    log.info(
        "poll: %d active, %d checked, %d finished, %d completions enqueued, %d resubmitted, "
        "%d timed out, %d vanished, %d errors",
        report.active,
        report.checked,
        len(report.finished),
        len(report.enqueued),
        len(report.resubmitted),
        len(report.timed_out),
        len(report.vanished),
        report.errors,
    )
    return report


def _guard(
    report: PollReport, record: JobRecord | BatchRecord, action: Callable[[], object]
) -> None:
    """Run one job's step; a failure is logged and counted, the rest of the run goes on."""
    what = describe_batch(record) if isinstance(record, BatchRecord) else jobs.describe(record)
    try:
        action()
    except JobConflictError:
        log.info("%s: changed by another run meanwhile; skipped", what)
    except (SpeechServiceError, StorageTransientError) as exc:
        with _report_lock:
            report.errors += 1
        log.warning("%s: poll step failed, retried next run: %s", what, exc)
    except Exception:  # one broken job must not stall every other job
        with _report_lock:
            report.errors += 1
        log.exception("%s: poll step failed unexpectedly; retried next run", what)


def _statuses(
    rt: Runtime, ids: list[str], report: PollReport, *, weight: int
) -> dict[str, _Status]:
    """Transcription id -> status, by listing (many jobs) or individual GETs (few).

    `weight`: how many recordings the ids stand for (a batch's id stands for all of its).
    """
    wanted = {tid for tid in ids if tid}
    found: dict[str, _Status] = {}
    if not wanted:
        return found
    if weight > rt.settings.poll_list_threshold:
        try:
            # Only this deployment's jobs (a shared Speech resource may hold many others);
            # jobs submitted before they were tagged are among `missing`, fetched below.
            listing = rt.speech.iter_transcriptions(
                page_size=_PAGE_SIZE, filter=description_filter(rt.deployment_tag)
            )
            for transcription in listing:
                if transcription.id in wanted:
                    found[transcription.id] = _Status(transcription)
                    if len(found) == len(wanted):
                        break  # every job we care about is seen: no need for more pages
        except SpeechThrottledError as exc:
            log.warning(
                "poll: listing throttled (retry after %s s); rest next run", exc.retry_after
            )
            return found
        except SpeechServiceError as exc:
            log.warning("poll: listing failed (%s); falling back to individual GETs", exc)
    missing = sorted(wanted - found.keys())
    # Entries missing from the listing (new, or skipped by paging while others deleted) and
    # the few-jobs case: one GET each, a bounded number at a time.
    if missing:
        workers = min(rt.settings.speech_max_concurrency, len(missing))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
            for tid, status in zip(missing, pool.map(lambda t: _get(rt, t), missing), strict=True):
                if status is not None:
                    found[tid] = status
    report.checked = len(found)
    return found


def _get(rt: Runtime, transcription_id: str) -> _Status | None:
    try:
        transcription, retry_after = rt.speech.get(transcription_id)
    except SpeechNotFoundError:
        return _Status(None)
    except SpeechServiceError as exc:
        log.warning("poll: status of %s unavailable this run: %s", transcription_id, exc)
        return None
    return _Status(transcription, retry_after)


def _apply(rt: Runtime, record: JobRecord, status: _Status, report: PollReport) -> None:
    now = rt.clock()
    transcription = status.transcription
    if transcription is None:
        report.vanished.append(record.key)
        log.warning(
            "%s: transcription %s is gone from the service; resubmitting",
            jobs.describe(record),
            record.transcription_id,
        )
        resubmit_vanished(
            rt,
            record,
            reason=f"transcription {record.transcription_id} disappeared from the service",
        )
        return
    if transcription.status.is_terminal:
        mark_finished(rt, record, transcription)
        report.finished.append(record.key)
        report.enqueued.append(record.key)
        return
    # Still NotStarted/Running: write only when something changed (state, status, or a
    # Retry-After that pushes the next check beyond the usual schedule).
    min_gap = rt.settings.poll_min_interval_seconds
    wait = max(status.retry_after or 0.0, 0.0)
    next_check = now + timedelta(seconds=max(wait, min_gap)) if wait > min_gap else None
    if (
        record.state is JobState.SUBMITTED
        or record.service_status != transcription.status
        or next_check is not None
    ):
        rt.store.save(
            record,
            jobs.observe(
                record,
                now=now,
                service_status=str(transcription.status),
                next_check_at=next_check or now + timedelta(seconds=min_gap),
            ),
        )


def _apply_batch(rt: Runtime, batch: BatchRecord, status: _Status) -> None:
    apply_batch_status(rt, batch, status.transcription)


def mark_finished(
    rt: Runtime, record: JobRecord, transcription: Transcription, *, send: Send | None = None
) -> JobRecord:
    """The service finished the job: move it to `completing`, then enqueue its completion.

    The conditional write comes first, so of two runs that see the end at once only one
    enqueues; a crash before the enqueue is healed by the completion lease. `send`, when
    given, takes the message instead of the queue client (a function's queue output).
    """
    saved = rt.store.save(
        record,
        jobs.finish(
            record,
            now=rt.clock(),
            service_status=str(transcription.status),
            lease=job_lease(rt),
            error_code=transcription.error_code or "",
            error_message=transcription.error_message or "",
        ),
    )
    enqueue_completion(rt, saved, send=send)
    return saved


def enqueue_completion(rt: Runtime, record: JobRecord, *, send: Send | None = None) -> None:
    """Send ``{"job_key": ...}`` to the completion queue (base64, as the host expects), or
    hand it to `send`."""
    body = json.dumps({"job_key": record.key})
    how = send_completion(rt, body, send, what="completion")
    log.info("%s: completion %s (%s)", jobs.describe(record), how, record.service_status)


def _reenqueue(rt: Runtime, record: JobRecord, report: PollReport) -> None:
    saved = rt.store.save(record, jobs.renew_lease(record, now=rt.clock(), lease=job_lease(rt)))
    log.warning(
        "%s: completion did not finish within its lease; enqueued again", jobs.describe(saved)
    )
    enqueue_completion(rt, saved)
    report.enqueued.append(record.key)


def _time_out(rt: Runtime, record: JobRecord, report: PollReport) -> None:
    hours = rt.settings.job_timeout_hours
    fail_job(
        rt,
        record,
        reason_code="TimedOut",
        message=(
            f"the job did not finish within JOB_TIMEOUT_HOURS ({hours:g} h); it was "
            f"{record.state} (service status {record.service_status or 'unknown'})"
        ),
    )
    report.timed_out.append(record.key)


def _resubmit(rt: Runtime, records: Iterable[JobRecord], report: PollReport) -> None:
    """(Re)submit due received/deferred jobs: longest waiting first, a bounded number per run.

    Each submission goes through the client's rate limiter with the lowest priority, so this
    never takes the quota from completions; the first one it refuses ends the run's share.
    Recordings the sweep found late are a backlog: with batching on they are queued for
    batches (no Speech call each), up to `_MAX_LATE_PER_RUN` a run, a few side by side.
    """
    ordered = sorted(records, key=lambda r: (r.next_check_at or r.created, r.created))
    sharing = batching_enabled(rt)
    late = [r for r in ordered if sharing and found_late(r)]
    alone = [r for r in ordered if not (sharing and found_late(r))]
    if late:
        workers = min(_LATE_WORKERS, len(late))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll-late") as pool:
            list(pool.map(lambda r: _resume(rt, r, report), late[:_MAX_LATE_PER_RUN]))
    limit = rt.settings.speech_rate_limit
    cap = limit.submission_cap if limit is not None else _MAX_RESUBMITS_UNLIMITED
    for record in alone[:cap]:
        result = _resume(rt, record, report)
        if result is not None and (
            result.state is JobState.QUEUED
            or (result.state is JobState.DEFERRED and result.error_code == THROTTLED_CODE)
        ):
            # Still throttled: submitting the rest now would only earn more 429s.
            log.info("poll: Speech is throttling; remaining resubmissions wait for the next run")
            break


def _resume(rt: Runtime, record: JobRecord, report: PollReport) -> JobRecord | None:
    """`resume_job`, failures logged and counted; None when it failed."""
    try:
        result = resume_job(rt, record)
    except (SpeechServiceError, StorageTransientError) as exc:
        with _report_lock:
            report.errors += 1
        log.warning("%s: resubmission failed, retried next run: %s", jobs.describe(record), exc)
        return None
    except Exception:  # one broken job must not stall every other job
        with _report_lock:
            report.errors += 1
        log.exception("%s: resubmission failed unexpectedly", jobs.describe(record))
        return None
    with _report_lock:
        report.resubmitted.append(record.key)
    return result
