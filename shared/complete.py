"""Completion: a finished job becomes transcripts (or an error report), then is cleaned up.

Triggered by ``{"job_key": ...}`` on the completion queue (the queue's batch messages go to
`shared.batcher` and `shared.batch_complete`, see `shared.batch_messages`). Order, for crash
safety: write every output (idempotent overwrites), THEN delete the server-side
transcription, THEN mark the job done. A repeat of the same message finds the job done and
does nothing; a repeat after a crash between the DELETE and the record update finds the
transcription gone but the outputs in place, and just marks the job done.
A DELETE that is throttled or fails transiently does not fail the completion: the job is
saved as completing with `outputs_written`, the poller re-enqueues it when due, and that
run only deletes and marks the job done (the outputs are not written twice).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Final

from shared import jobs
from shared.batch_messages import BatchWork, parse_batch_message
from shared.errors import (
    JobConflictError,
    ResultsAccessDeniedError,
    ResultsNotReadableError,
    SpeechNotFoundError,
    SpeechTransientError,
)
from shared.input_access import judge_unreadable_input
from shared.input_versions import InputStatus, input_status
from shared.jobs import JobRecord, JobState
from shared.outcomes import drop_superseded, fail_job, resubmit_vanished
from shared.output_names import output_name
from shared.poll import mark_finished
from shared.runtime import Runtime
from shared.service_failures import INPUT_ACCESS_CODES, is_transient_failure
from shared.storage import exists, upload
from shared.submit import defer_delay
from shared.transcripts import TranscriptMetadata, render_products

log = logging.getLogger(__name__)

__all__ = [
    "RESULTS_ACCESS_GRACE",
    "RESULTS_NOT_READABLE_CODE",
    "RESULT_FILE",
    "complete_job",
    "handle_completion_message",
    "parse_message",
    "write_outputs",
]

RESULT_FILE: Final = "result.json"
# The reason code of a job whose result file the app cannot read as configured (BYOS).
RESULTS_NOT_READABLE_CODE: Final = "ResultsNotReadable"
# A results account refusing the app is retried this long after the job finished, every
# few minutes, before it is reported: role assignments take minutes to propagate after a
# deployment, and the results wait on the service (TIME_TO_LIVE_HOURS) meanwhile.
RESULTS_ACCESS_GRACE: Final = timedelta(hours=1)
_RESULTS_ACCESS_RETRY_S: Final = 300.0
# Product writes of every completion in this process go through one long-lived pool: a pool
# per recording started and joined 8 threads for each one (800 thread starts for a batch of
# 100, a good part of the process's CPU while a batch is written). 64 covers a batch's 16
# recordings writing side by side plus single-job completions beside them.
_UPLOAD_WORKERS: Final = 64
_UPLOADS: Final = ThreadPoolExecutor(max_workers=_UPLOAD_WORKERS, thread_name_prefix="outputs")
# A DELETE that failed after the outputs were written is tried again after this (jittered).
_DELETE_RETRY_S: Final = 15.0
_CONTENT_TYPES: Final = {
    ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "application/x-subrip; charset=utf-8",
}


class BadMessageError(ValueError):
    """A completion message that is not ``{"job_key": "<key>"}``."""


def parse_message(body: str) -> str:
    """The job key a completion message carries."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadMessageError(f"not JSON: {body[:80]!r}") from exc
    key = data.get("job_key") if isinstance(data, dict) else None
    if not isinstance(key, str) or not key.startswith(jobs.KEY_PREFIX):
        raise BadMessageError(f"no job_key in {body[:80]!r}")
    return key


def handle_completion_message(rt: Runtime, body: str) -> JobRecord | None:
    """The queue trigger's work; returns the job as this run leaves it."""
    rt.ensure_resources()
    batch_work = parse_batch_message(body)
    if batch_work is not None:
        _do_batch_work(rt, *batch_work)
        return None
    try:
        key = parse_message(body)
    except BadMessageError as exc:
        # Retrying cannot fix a malformed message: log it and let it go.
        log.error("completion: dropped a malformed message: %s", exc)
        return None
    record = rt.store.get(key)
    if record is None:
        log.error("job=%s: completion for an unknown job; dropped", key)
        return None
    return complete_job(rt, record)


def _do_batch_work(rt: Runtime, work: BatchWork, key: str) -> None:
    """A batch run or a batch's completion (imported here: only batching deployments pay)."""
    if work is BatchWork.RUN:
        from shared.batcher import run_batches  # noqa: PLC0415 - lazy

        run_batches(rt)
    else:
        from shared.batch_complete import handle_batch_completion  # noqa: PLC0415 - lazy

        handle_batch_completion(rt, key)


def complete_job(rt: Runtime, record: JobRecord) -> JobRecord:
    """Finish `record` if the service has finished it; harmless to run again."""
    if record.state.is_terminal:
        log.info(
            "%s: already %s; duplicate completion ignored", jobs.describe(record), record.state
        )
        return record
    if record.state in (JobState.SUBMITTED, JobState.RUNNING):
        # A push notification (web hook) may arrive before the poller saw the end.
        record = _finish_from_service(rt, record)
    if record.state is JobState.COMPLETING and record.outputs_written:
        return _delete_then_done(rt, record)
    if record.state is JobState.COMPLETING and input_status(rt, record) is InputStatus.CHANGED:
        return _drop_superseded(rt, record)
    if record.state is not JobState.COMPLETING:
        log.info(
            "%s: not finished on the service (%s); nothing to complete",
            jobs.describe(record),
            record.state,
        )
        return record
    try:
        if record.service_status == "Succeeded":
            return _complete_success(rt, record)
        return _complete_failure(rt, record)
    except SpeechTransientError as exc:
        return _retry_later(rt, record, exc)


def _retry_later(rt: Runtime, record: JobRecord, exc: SpeechTransientError) -> JobRecord:
    """Speech is throttling or failing transiently: hand the job back to the poller.

    Raising would let the host retry the message at once, into the same full rate-limit
    window, and five throttled tries would send it to the poison queue. Instead the job stays
    completing with its next check after Retry-After; the poller re-enqueues it then.
    """
    now = rt.clock()
    lease = defer_delay(exc.retry_after, minimum=_DELETE_RETRY_S)
    log.warning(
        "%s: completion postponed, Speech answered %s; retried after %s",
        jobs.describe(record),
        exc,
        (now + lease).isoformat(timespec="seconds"),
    )
    try:
        return rt.store.save(record, jobs.renew_lease(record, now=now, lease=lease))
    except JobConflictError:
        raise exc from None  # someone else moved the job: let the host retry the message


def _drop_superseded(rt: Runtime, record: JobRecord) -> JobRecord:
    """Write nothing for an overwritten version (no outputs, no report), clean up, end it."""
    log.info(
        "%s: the recording was overwritten while this version was transcribed; "
        "the newer version's job writes the outputs",
        jobs.describe(record),
    )
    return drop_superseded(
        rt,
        record,
        reason="the recording was overwritten by a newer upload before this version finished",
    )


def _finish_from_service(rt: Runtime, record: JobRecord) -> JobRecord:
    try:
        transcription, _ = rt.speech.get(record.transcription_id)
    except SpeechNotFoundError:
        return record  # vanished: the poller sees the 404 too and resubmits
    if not transcription.status.is_terminal:
        return record
    try:
        # mark_finished enqueues another message; it will find the job done and stop.
        return mark_finished(rt, record, transcription)
    except JobConflictError:
        return rt.store.get(record.key) or record


def _complete_success(rt: Runtime, record: JobRecord) -> JobRecord:
    try:
        files = rt.speech.list_files(record.transcription_id)
    except SpeechNotFoundError:
        return _transcription_gone(rt, record)
    results = [f for f in files if f.kind == "Transcription"]
    if not results:
        return fail_job(
            rt,
            record,
            reason_code="NoResult",
            message="the Speech service reported success but produced no transcription file",
        )
    try:
        raw = rt.results.read(results[0].content_url)
    except SpeechNotFoundError:
        return _results_gone(rt, record)
    except ResultsAccessDeniedError as exc:
        return _wait_for_results_access(rt, record, exc)
    except ResultsNotReadableError as exc:
        return fail_job(rt, record, reason_code=RESULTS_NOT_READABLE_CODE, message=exc.message)
    try:
        write_outputs(rt, record, raw)
    except ValueError as exc:
        return fail_job(
            rt,
            record,
            reason_code="InvalidResult",
            message=f"the Speech service's result file could not be read: {exc}",
        )
    return _delete_then_done(rt, record)


def write_outputs(rt: Runtime, record: JobRecord, raw: bytes, result: Any = None) -> None:
    """Render `raw` (a result file; `result` its decoded JSON if already parsed) into every
    product of OUTPUT_FORMATS under the recording's name. ValueError: not a usable result.

    Writes are idempotent overwrites, so a repeated completion writes the same blobs.
    """
    if result is None:
        result = json.loads(raw)
    products = _render(rt, record, result)
    if "raw" in rt.settings.output_formats:
        products[RESULT_FILE] = raw
    container = rt.settings.output_container

    def write(item: tuple[str, bytes]) -> None:
        relative, data = item
        suffix = relative[relative.rfind(".") :]
        upload(
            rt.storage,
            container,
            output_name(record.blob_name, relative),
            data,
            content_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"),
        )

    # The products are independent blobs: write them side by side (a completion's latency
    # is mostly these round trips). Any failure propagates, and the retry rewrites them all.
    list(_UPLOADS.map(write, products.items()))
    log.info(
        "%s: wrote %s under %s/%s/",
        jobs.describe(record),
        ", ".join(sorted(products)),
        container,
        output_name(record.blob_name, "x")[:-2],
    )


def _results_gone(rt: Runtime, record: JobRecord) -> JobRecord:
    """The result file was listed but is gone (its transcription expired, or a lifecycle rule
    removed it from the results account): drop the transcription and start over."""
    log.warning(
        "%s: the result file of transcription %s is gone; deleting it and resubmitting",
        jobs.describe(record),
        record.transcription_id,
    )
    rt.speech.delete(record.transcription_id)
    return _transcription_gone(rt, record)


def _wait_for_results_access(
    rt: Runtime, record: JobRecord, exc: ResultsAccessDeniedError
) -> JobRecord:
    """The results account refuses the app: retry every few minutes, then report it.

    Within RESULTS_ACCESS_GRACE of the job's end the job stays completing and the poller
    re-enqueues it when its lease runs out (as for throttling); after that, it is reported.
    """
    now = rt.clock()
    finished = record.finished_at or record.created
    if now - finished >= RESULTS_ACCESS_GRACE:
        hours = RESULTS_ACCESS_GRACE.total_seconds() / 3600
        return fail_job(
            rt,
            record,
            reason_code=RESULTS_NOT_READABLE_CODE,
            message=f"{exc.message} (still refused {hours:g} h after the job finished)",
        )
    lease = defer_delay(None, minimum=_RESULTS_ACCESS_RETRY_S)
    log.error(
        "%s: %s; retried at %s",
        jobs.describe(record),
        exc.message,
        (now + lease).isoformat(timespec="seconds"),
    )
    try:
        return rt.store.save(record, jobs.renew_lease(record, now=now, lease=lease))
    except JobConflictError:
        raise exc from None  # someone else moved the job: let the host retry the message


def _delete_then_done(rt: Runtime, record: JobRecord) -> JobRecord:
    """Delete the server-side job, then mark the job done; the outputs are already written.

    A throttled or failed DELETE must not fail the completion (its retry would list, download
    and write every output again): the job stays completing with `outputs_written`, and the
    poller re-enqueues it when due, which then only deletes. It stays active until the
    transcription is gone, so nothing is left behind on the service.
    """
    try:
        rt.speech.delete(record.transcription_id)
    except SpeechTransientError as exc:
        now = rt.clock()
        retry_at = now + defer_delay(exc.retry_after, minimum=_DELETE_RETRY_S)
        log.warning(
            "%s: outputs written; deleting transcription %s failed (%s), retried at %s",
            jobs.describe(record),
            record.transcription_id,
            exc,
            retry_at.isoformat(timespec="seconds"),
        )
        return rt.store.save(record, jobs.outputs_saved(record, now=now, retry_at=retry_at))
    return _mark_done(rt, record)


def _render(rt: Runtime, record: JobRecord, result: Any) -> dict[str, bytes]:
    if not isinstance(result, dict):
        raise ValueError("the result is not a JSON object")
    channels = [0] if record.channels == 1 else [0, 1]
    s = rt.settings
    meta = TranscriptMetadata(
        source_name=record.blob_name,
        job_id=record.key,
        model=s.speech_model or None,
        locale=s.speech_locale,
        channel_count=len(channels),
        created=record.created.isoformat(),
        finished=record.finished_at.isoformat() if record.finished_at else None,
        diarization=record.channels == 1 and s.diarization_enabled,
        language_identification=bool(s.language_candidates),
        candidate_locales=s.language_candidates,
    )
    return render_products(
        result,
        meta,
        channel_labels=s.channel_labels,
        formats=s.output_formats,
        channels=channels,
    )


def _transcription_gone(rt: Runtime, record: JobRecord) -> JobRecord:
    """The transcription is gone: done if our outputs are in place, else submit again."""
    marker = _marker_name(rt, record)
    if marker is not None and exists(rt.storage, rt.settings.output_container, marker):
        log.info("%s: outputs already written and job deleted; marking done", jobs.describe(record))
        return _mark_done(rt, record)
    log.warning(
        "%s: transcription vanished before its results were saved; resubmitting",
        jobs.describe(record),
    )
    return resubmit_vanished(
        rt,
        record,
        reason=f"transcription {record.transcription_id} disappeared before completion",
    )


def _marker_name(rt: Runtime, record: JobRecord) -> str | None:
    formats = rt.settings.output_formats
    if "raw" in formats:
        return output_name(record.blob_name, RESULT_FILE)
    if "channels" in formats:
        return output_name(record.blob_name, "channel_0.json")
    for fmt in ("json", "txt", "vtt", "srt"):
        if fmt in formats:
            return output_name(record.blob_name, f"transcript.{fmt}")
    return None


def _complete_failure(rt: Runtime, record: JobRecord) -> JobRecord:
    code = record.error_code or "Unknown"
    message = record.error_message or "the Speech service reported the job as failed"
    retry = is_transient_failure(code)
    if code in INPUT_ACCESS_CODES:
        # The service could not read the recording: deleted or a set-up that cannot work
        # (both reported there), or a SAS that may have run out before the job started, or
        # a storage outage, which another submission may well fix (shared.input_access).
        judged = judge_unreadable_input(rt, record, code=code, message=message)
        if isinstance(judged, JobRecord):
            return judged
        retry = True
        message = f"{message} ({judged.why})"
    if retry and record.attempts < rt.settings.max_job_attempts:
        rt.speech.delete(record.transcription_id)
        now = rt.clock()
        until = now + defer_delay(None, minimum=30.0)
        log.warning(
            "%s: service failure %s is transient; resubmitting (attempt %d of %d)",
            jobs.describe(record),
            code,
            record.attempts + 1,
            rt.settings.max_job_attempts,
        )
        return rt.store.save(
            record,
            jobs.defer(record, now=now, until=until, reason_code=code, reason=message),
        )
    if retry:
        message = f"{message} (gave up after {record.attempts} attempts)"
    return fail_job(
        rt,
        record,
        reason_code=code,
        message=message,
        service_error_code=code,
    )


def _mark_done(rt: Runtime, record: JobRecord) -> JobRecord:
    try:
        return rt.store.save(record, jobs.complete(record, now=rt.clock()))
    except JobConflictError:
        latest = rt.store.get(record.key)
        if latest is not None and latest.state is JobState.DONE:
            return latest
        raise
