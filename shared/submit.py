"""Submitting a recording to Speech: from a new blob (blob trigger) or a due job (poller).

The job record is written before anything else happens, so a duplicate trigger for the same
blob version finds it and does nothing. The header is checked with ranged reads (never the
whole recording); bad input ends as `rejected` with an error report and the function
succeeds (bad input must not go to the poison queue). Speech throttling and transient
errors defer the job for the poller to resubmit; permanent errors fail it with a report.
While recordings arrive faster than they can be submitted singly (`shared.batch_admission`),
a new one is queued instead, to share a Speech job with others (`shared.batcher`).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared import jobs
from shared.audio_header import sniff_audio
from shared.batch_admission import batching_enabled, queue_job, submit_singly
from shared.errors import (
    InputRejectedError,
    JobConflictError,
    SpeechAuthError,
    SpeechPermanentError,
    SpeechServiceError,
    SpeechThrottledError,
    SpeechTransientError,
    redact_url,
)
from shared.input_access import judge_unreadable_input
from shared.jobs import JobRecord, JobState
from shared.outcomes import drop_superseded, fail_job, reject_job
from shared.runtime import Runtime
from shared.service_failures import INPUT_ACCESS_CODES
from shared.speech_models import build_submit_body
from shared.storage import range_reader, storage_errors

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

    from shared.speech_models import Transcription

log = logging.getLogger(__name__)

__all__ = [
    "MISSED_TRIGGER_CODE",
    "THROTTLED_CODE",
    "defer_delay",
    "found_late",
    "handle_new_blob",
    "job_lease",
    "resume_job",
    "submit_body",
    "submit_job",
]

# The reason code of a job deferred because Speech answered 429 to its submission.
THROTTLED_CODE: Final = "Throttled"
# The reason code of a job the sweep recorded for a recording that had none (`shared.sweep`).
MISSED_TRIGGER_CODE: Final = "MissedTrigger"
_DEFER_BASE_S: Final = 60.0
_DEFER_MAX_S: Final = 15 * 60.0
_AUTH_DEFER_S: Final = 10 * 60.0


def job_lease(rt: Runtime) -> timedelta:
    """How long a run holds a job (submitting or completing it) before another may take over.

    JOB_LEASE_SECONDS (default 10 min, the host's functionTimeout): long enough that a live
    run is not robbed; after a crash, the job waits this long before the poller resumes it.
    """
    return timedelta(seconds=rt.settings.job_lease_seconds)


def defer_delay(retry_after: float | None, *, minimum: float = _DEFER_BASE_S) -> timedelta:
    """When to try again: the service's Retry-After when it gave one, else a jittered minute.

    Jitter spreads a bulk upload's deferred jobs over time instead of retrying them together.
    """
    base = max(retry_after or 0.0, minimum)
    jittered = base * (1.0 + random.random())  # noqa: S311 - jitter, not cryptography
    return timedelta(seconds=min(jittered, max(_DEFER_MAX_S, base)))


def handle_new_blob(rt: Runtime, blob: BlobClient) -> JobRecord | None:
    """The blob trigger's work: record the job for this blob version and submit it.

    Returns the job as it ends this run, or None when the blob is already gone.
    """
    rt.ensure_resources()
    container, name = blob.container_name, blob.blob_name
    try:
        with storage_errors("read input properties"):
            props = blob.get_blob_properties()
    except ResourceNotFoundError:
        log.warning(
            "blob=%s/%s: deleted before it could be processed; nothing to do", container, name
        )
        return None
    now = rt.clock()
    record = jobs.new_job(
        container=container,
        name=name,
        etag=str(props.etag),
        size=int(props.size),
        now=now,
        timeout=timedelta(hours=rt.settings.job_timeout_hours),
        lease=job_lease(rt),
    )
    created = rt.store.create(record)
    if created is not None:
        uploaded = props.last_modified
        lag = (now - uploaded).total_seconds() if uploaded is not None else None
        return _submit_releasing_on_error(rt, created, blob, trigger_lag_s=lag)
    existing = rt.store.get(record.key)
    if existing is None:  # created and deleted in between: only an operator does that
        log.warning("%s: job record vanished; leaving it to the sweep", jobs.describe(record))
        return None
    if existing.state in (JobState.RECEIVED, JobState.DEFERRED) and jobs.is_due(existing, now):
        log.info("%s: duplicate trigger resumes a stalled job", jobs.describe(existing))
        return resume_job(rt, existing, blob=blob)
    log.info(
        "%s: duplicate trigger for this blob version (job is %s); nothing to do",
        jobs.describe(existing),
        existing.state,
    )
    return existing


def resume_job(rt: Runtime, record: JobRecord, *, blob: BlobClient | None = None) -> JobRecord:
    """Claim a due received/deferred job (conditional write = lease) and submit it."""
    look_up = jobs.must_look_up(record)  # decided on the record as it was before the claim
    try:
        claimed = rt.store.save(record, jobs.claim(record, now=rt.clock(), lease=job_lease(rt)))
    except JobConflictError:
        log.info("%s: another run took the job first", jobs.describe(record))
        return record
    return _submit_releasing_on_error(rt, claimed, blob, look_up=look_up)


def _submit_releasing_on_error(
    rt: Runtime,
    record: JobRecord,
    blob: BlobClient | None,
    *,
    look_up: bool = False,
    trigger_lag_s: float | None = None,
) -> JobRecord:
    """`submit_job`, but a failure hands the job back at once instead of holding the lease.

    The trigger's retry (or the next poll) can then resume it without waiting out the lease;
    the release marks that a lookup by displayName comes first, since a POST may have gone out.
    """
    try:
        return submit_job(rt, record, blob=blob, look_up=look_up, trigger_lag_s=trigger_lag_s)
    except Exception:
        _release(rt, record.key)
        raise


def _release(rt: Runtime, key: str) -> None:
    try:
        current = rt.store.get(key)
        if current is None or current.state not in (JobState.RECEIVED, JobState.DEFERRED):
            return
        now = rt.clock()
        if current.next_check_at is not None and current.next_check_at > now:
            rt.store.save(current, jobs.claim(current, now=now, lease=timedelta(0)))
            log.info("%s: released after a failed attempt", jobs.describe(current))
    except Exception as exc:  # noqa: BLE001 - best effort; the lease expiring heals it too
        log.warning("job=%s: could not release after a failure: %s", key, exc)


def submit_job(
    rt: Runtime,
    record: JobRecord,
    *,
    blob: BlobClient | None = None,
    look_up: bool | None = None,
    trigger_lag_s: float | None = None,
) -> JobRecord:
    """Check the input (once), then submit it unless an earlier POST's job is found.

    `record` must be held by this run (just created, or claimed). `look_up`: search for an
    earlier run's transcription first (default: the record's `needs_lookup`).
    `trigger_lag_s`: upload → trigger delay, a backlog signal (`shared.batch_admission`).
    """
    if blob is None:
        blob = rt.storage.blob_client(record.container, record.blob_name)
    if not record.audio_format:
        checked = _check_input(rt, record, blob)
        if checked.state.is_terminal:
            return checked
        record = checked
    if record.attempts >= rt.settings.max_job_attempts:
        return fail_job(
            rt,
            record,
            reason_code="OutOfAttempts",
            message=(
                f"the Speech service did not complete the job in {record.attempts} attempts; "
                f"last error: {record.error_code or 'unknown'} {record.error_message}".strip()
            ),
            service_error_code=record.error_code,
        )
    if record.needs_lookup if look_up is None else look_up:
        adopted = _adopt_earlier_submission(rt, record)
        if adopted is not None:
            return adopted
    late = found_late(record)
    if late:
        # The sweep records a recording only once it has waited SWEEP_MIN_AGE_SECONDS for its
        # trigger: a backlog by definition (a host or Event Grid far behind, hundreds of them
        # at once), which a batch spends the quota on once instead of three times each.
        trigger_lag_s = max(trigger_lag_s or 0.0, rt.settings.sweep_min_age_seconds)
    shareable = record.state is JobState.RECEIVED or late
    if shareable and not submit_singly(rt, trigger_lag_s=trigger_lag_s):
        # Arrivals outpace single submissions: share a Speech job (`shared.batcher`).
        return queue_job(rt, record)
    return _post(rt, record)


def found_late(record: JobRecord) -> bool:
    """True for a job the sweep recorded (its trigger missed, or long behind) and nobody has
    tried to submit yet: like a new arrival, it may share a Speech job. A job deferred for any
    other reason (a failed attempt, a file retried alone after its batch) goes on its own."""
    return record.state is JobState.DEFERRED and record.error_code == MISSED_TRIGGER_CODE


def _check_input(rt: Runtime, record: JobRecord, blob: BlobClient) -> JobRecord:
    try:
        info = sniff_audio(
            range_reader(blob, record.blob_etag),
            name=record.blob_name,
            size=record.blob_size,
            max_bytes=rt.settings.max_audio_mb * 1024 * 1024,
        )
    except InputRejectedError as exc:
        return reject_job(rt, record, reason_code=exc.reason_code, message=exc.message)
    except ResourceNotFoundError:
        return reject_job(
            rt,
            record,
            reason_code="InputDeleted",
            message="the recording was deleted before it could be transcribed",
        )
    except ResourceModifiedError:
        # A newer version was uploaded; it has its own job (and its own outcome).
        log.info("%s: superseded by a newer upload; this version is skipped", jobs.describe(record))
        return drop_superseded(
            rt, record, reason="the blob was overwritten before this version was submitted"
        )
    log.info(
        "%s: %s audio, %s channel(s), %s s",
        jobs.describe(record),
        info.format,
        info.channels,
        f"{info.duration_s:.1f}" if info.duration_s is not None else "unknown",
    )
    return jobs.with_audio(
        record, channels=info.channels, audio_format=info.format, duration_s=info.duration_s
    )


def _adopt_earlier_submission(rt: Runtime, record: JobRecord) -> JobRecord | None:
    """A transcription named after this job from an earlier, unrecorded POST: keep one."""
    found = rt.speech.find_by_display_name(record.key)
    usable = [t for t in found if t.status != "Failed"]
    for extra in [t for t in found if t.status == "Failed"] + usable[1:]:
        log.info("%s: deleting leftover transcription %s", jobs.describe(record), extra.id)
        rt.speech.delete(extra.id)
    if not usable:
        return None
    keep = usable[0]
    log.info(
        "%s: found transcription %s from an earlier attempt; not submitting again",
        jobs.describe(record),
        keep.id,
    )
    return _record_submission(rt, record, keep)


def submit_body(
    rt: Runtime, *, display_name: str, content_urls: list[str], mono: bool
) -> dict[str, Any]:
    """The POST body for one recording or a batch sharing the same properties.

    `content_urls` are SAS URLs (secrets: never logged) or, in identity mode, plain URLs.
    """
    s = rt.settings
    return build_submit_body(
        display_name=display_name,
        content_urls=content_urls,
        locale=s.speech_locale,
        channels=[0] if mono else [0, 1],
        time_to_live_hours=s.time_to_live_hours,
        model_url=s.speech_model,
        word_timestamps=s.word_timestamps,
        punctuation_mode=s.punctuation_mode,
        profanity_filter_mode=s.profanity_filter_mode,
        diarization_max_speakers=(
            s.diarization_max_speakers if (mono and s.diarization_enabled) else None
        ),
        language_candidates=s.language_candidates,
        language_id_mode=s.language_id_mode,
        description=rt.deployment_tag,
    )


def _post(rt: Runtime, record: JobRecord) -> JobRecord:
    now = rt.clock()
    content_url = rt.content_urls.url_for(record.container, record.blob_name, now=now)
    body = submit_body(
        rt, display_name=record.key, content_urls=[content_url], mono=record.channels == 1
    )
    try:
        transcription = rt.speech.submit(body)
    except SpeechThrottledError as exc:
        if batching_enabled(rt):
            # Nothing was created and the quota is short: a batch spends it once for many.
            return queue_job(rt, record)
        return _defer(rt, record, exc, code=THROTTLED_CODE, needs_lookup=False)
    except SpeechTransientError as exc:
        # A timeout or 5xx may hide a job the service did create: look before posting again.
        return _defer(rt, record, exc, needs_lookup=True)
    except SpeechAuthError as exc:
        # Wrong key or missing role: an operator fixes it; the job waits (until its deadline).
        log.error("%s: Speech refused the credentials: %s", jobs.describe(record), exc)
        return _defer(rt, record, exc, needs_lookup=False, minimum=_AUTH_DEFER_S)
    except SpeechPermanentError as exc:
        code = exc.detail_code or "SubmitRejected"
        if code in INPUT_ACCESS_CODES:
            # Refused because the service cannot read the recording: with a SAS signed a
            # moment ago, that is the storage set-up (or a deleted recording), never expiry.
            judged = judge_unreadable_input(
                rt, record, code=code, message=exc.message, at_submission=True
            )
            if isinstance(judged, JobRecord):
                return judged
        return fail_job(
            rt,
            record,
            reason_code=code,
            message=f"the Speech service rejected the job: {exc.message}",
            service_error_code=code,
        )
    return _record_submission(rt, record, transcription)


def _record_submission(rt: Runtime, record: JobRecord, transcription: Transcription) -> JobRecord:
    url = redact_url(transcription.self_url)
    new = jobs.submitted(
        record,
        now=rt.clock(),
        transcription_id=transcription.id,
        transcription_url=url,
        first_check=timedelta(seconds=rt.settings.poll_min_interval_seconds),
    )
    try:
        saved = rt.store.save(record, new)
    except JobConflictError:
        # Someone else moved the job while we held its lease (should not happen): do not
        # leave our transcription behind as an orphan.
        log.warning(
            "%s: lost the job while submitting; deleting transcription %s",
            jobs.describe(record),
            transcription.id,
        )
        rt.speech.delete(transcription.id)
        raise
    log.info("%s: submitted as %s", jobs.describe(saved), url)
    return saved


def _defer(
    rt: Runtime,
    record: JobRecord,
    exc: SpeechServiceError,
    *,
    needs_lookup: bool,
    code: str = "",
    minimum: float = _DEFER_BASE_S,
) -> JobRecord:
    now = rt.clock()
    until: datetime = now + defer_delay(exc.retry_after, minimum=minimum)
    code = code or exc.detail_code or type(exc).__name__
    log.warning(
        "%s: submission deferred until %s (%s)",
        jobs.describe(record),
        until.isoformat(timespec="seconds"),
        code,
    )
    return rt.store.save(
        record,
        jobs.defer(
            record,
            now=now,
            until=until,
            reason_code=code,
            reason=exc.message,
            needs_lookup=needs_lookup,
        ),
    )
