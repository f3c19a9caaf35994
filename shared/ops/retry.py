"""An operator's retry of a failed job: a new attempt for the same recording version.

Allowed only for a `failed` job whose recording is still there, unchanged (same ETag): the
job moves to `deferred`, due at once, with fresh attempts and deadline, and the poller
submits it on its next run. Its error report is removed, so the recording has one visible
outcome again (the transcripts, or a new report). Idempotent: asking again while that
attempt runs (or after it ended) answers "already retried" without a second attempt;
everything else is refused with what, why and what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from azure.core.exceptions import ResourceNotFoundError

from shared import jobs
from shared.errors import JobConflictError, OperatorRequestError
from shared.jobs import JobRecord, JobState
from shared.output_names import error_report_name
from shared.runtime import Runtime
from shared.storage import storage_errors

log = logging.getLogger(__name__)

__all__ = ["RetryResult", "retry_job"]

_RACES: Final = 3


@dataclass(frozen=True)
class RetryResult:
    """`retried`: this call created the new attempt (False: an earlier call had)."""

    record: JobRecord
    retried: bool


def _already_retried(record: JobRecord) -> bool:
    """True when the job's latest failure was followed by an operator's retry."""
    last_failure = max(
        (i for i, t in enumerate(record.history) if t.state == JobState.FAILED), default=-1
    )
    return any(t.code == jobs.RETRY_CODE for t in record.history[last_failure + 1 :])


def _refuse(code: str, message: str, what_to_do: str) -> OperatorRequestError:
    return OperatorRequestError(409, code, message, what_to_do)


def _check_recording(rt: Runtime, record: JobRecord) -> None:
    blob = rt.storage.blob_client(record.container, record.blob_name)
    try:
        with storage_errors("read recording properties"):
            props = blob.get_blob_properties()
    except ResourceNotFoundError:
        raise _refuse(
            "RecordingGone",
            f"the recording {record.container}/{record.blob_name} no longer exists, so there "
            "is nothing to transcribe again.",
            "Upload the recording again; the upload starts a new job by itself.",
        ) from None
    if props.etag != record.blob_etag:
        raise _refuse(
            "RecordingChanged",
            "the recording was overwritten after this job failed; this job belongs to the "
            "older version.",
            "The newer version has its own job: list jobs with prefix= the recording name "
            "and look at the newest one.",
        )


def _refusal_for(record: JobRecord) -> OperatorRequestError:
    if record.state is JobState.DONE:
        return _refuse(
            "NotFailed",
            "the job is done: its transcripts are written, there is nothing to retry.",
            "To transcribe the recording again (e.g. with new settings), upload it again.",
        )
    if record.state is JobState.REJECTED:
        return _refuse(
            "NotFailed",
            f"the job was rejected ({record.error_code}): the input itself cannot be "
            "transcribed, and a retry would be rejected again.",
            "Read the advice in its error report, fix the recording and upload it again.",
        )
    return _refuse(
        "NotFailed",
        f"the job is still in progress (state {record.state}); only a failed job can be retried.",
        "Wait for it to end; if it fails, retry it then.",
    )


def retry_job(rt: Runtime, key: str) -> RetryResult:
    """Give the failed job `key` a new attempt; raises `OperatorRequestError` (404/409)."""
    for _ in range(_RACES):
        with storage_errors("read job"):
            record = rt.store.get(key) if key.startswith(jobs.KEY_PREFIX) else None
        if record is None:
            raise OperatorRequestError(
                404,
                "UnknownJob",
                f"there is no job with key {key[:80]!r}.",
                "List jobs (GET /api/jobs?state=failed) to find the key of a failed job.",
            )
        if record.state is not JobState.FAILED:
            if _already_retried(record):
                if record.is_active:  # an ended new attempt may have its own report
                    _remove_report(rt, record)
                return RetryResult(record, retried=False)
            raise _refusal_for(record)
        _check_recording(rt, record)
        timeout = timedelta(hours=rt.settings.job_timeout_hours)
        try:
            saved = rt.store.save(record, jobs.retry(record, now=rt.clock(), timeout=timeout))
        except JobConflictError:
            continue  # a concurrent retry (or sweep) won: look again
        log.warning("%s: retry requested by an operator", jobs.describe(saved))
        _remove_report(rt, saved)
        return RetryResult(saved, retried=True)
    raise OperatorRequestError(
        409,
        "Busy",
        "the job kept changing while the retry was being recorded.",
        "Ask again in a moment.",
    )


def _remove_report(rt: Runtime, record: JobRecord) -> None:
    """The old error report goes: the new attempt writes transcripts or a new report."""
    blob = rt.storage.blob_client(rt.settings.error_container, error_report_name(record.blob_name))
    try:
        with storage_errors("delete error report"):
            blob.delete_blob()
    except ResourceNotFoundError:
        pass
