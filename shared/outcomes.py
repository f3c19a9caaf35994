"""A job's attempt ending without transcripts: report, clean up, record the outcome.

Order matters for crash safety: the report is written first (idempotent overwrite), then the
server-side transcription is deleted (a 404 is fine), then the record moves to its terminal
state. A crash anywhere in between leaves the job active, and the next run repeats the steps.

Two outcomes write no report: a superseded version (the recording was overwritten; the newer
version's job reports on it) ends `rejected`, and a job whose transcription vanished from
the service goes back to `deferred`, due at once, for the poller to submit it again.
"""

from __future__ import annotations

import logging
from typing import Final

from shared import jobs
from shared.error_reports import build_error_report
from shared.jobs import JobRecord
from shared.output_names import error_report_name
from shared.runtime import Runtime
from shared.storage import upload

log = logging.getLogger(__name__)

__all__ = [
    "SUPERSEDED_CODE",
    "VANISHED_CODE",
    "drop_superseded",
    "fail_job",
    "reject_job",
    "resubmit_vanished",
    "write_error_report",
]

# The reason code of a version overwritten by a newer upload before it was transcribed.
SUPERSEDED_CODE: Final = "Superseded"
# The reason code of a job whose transcription the service no longer has (404).
VANISHED_CODE: Final = "Vanished"


def write_error_report(
    rt: Runtime,
    record: JobRecord,
    *,
    outcome: str,
    reason_code: str,
    message: str,
    service_error_code: str = "",
) -> str:
    """Write ``<name>.json`` into the error container; returns the report's blob name."""
    name = error_report_name(record.blob_name)
    data = build_error_report(
        record,
        outcome=outcome,
        reason_code=reason_code,
        message=message,
        now=rt.clock(),
        service_error_code=service_error_code,
    )
    upload(rt.storage, rt.settings.error_container, name, data)
    log.warning(
        "%s: %s (%s): %s; report %s/%s",
        jobs.describe(record),
        outcome,
        reason_code,
        message,
        rt.settings.error_container,
        name,
    )
    return name


def reject_job(rt: Runtime, record: JobRecord, *, reason_code: str, message: str) -> JobRecord:
    """The input cannot be transcribed: report it and end the job as `rejected`."""
    write_error_report(rt, record, outcome="rejected", reason_code=reason_code, message=message)
    return rt.store.save(
        record, jobs.reject(record, now=rt.clock(), reason_code=reason_code, reason=message)
    )


def fail_job(
    rt: Runtime,
    record: JobRecord,
    *,
    reason_code: str,
    message: str,
    service_error_code: str = "",
) -> JobRecord:
    """Give up on the job: report, delete its server-side transcription, end as `failed`."""
    write_error_report(
        rt,
        record,
        outcome="failed",
        reason_code=reason_code,
        message=message,
        service_error_code=service_error_code,
    )
    if record.transcription_id:
        rt.speech.delete(record.transcription_id)
    return rt.store.save(
        record,
        jobs.fail(record, now=rt.clock(), error_code=reason_code, error_message=message),
    )


def drop_superseded(rt: Runtime, record: JobRecord, *, reason: str) -> JobRecord:
    """The recording was overwritten: end this version `rejected` with no outputs and no
    report (the newer version has its own job), deleting its transcription if it has one."""
    if record.transcription_id:
        rt.speech.delete(record.transcription_id)
    return rt.store.save(
        record, jobs.reject(record, now=rt.clock(), reason_code=SUPERSEDED_CODE, reason=reason)
    )


def resubmit_vanished(rt: Runtime, record: JobRecord, *, reason: str) -> JobRecord:
    """The service no longer has the job's transcription: defer the job, due now, so the
    poller submits it again (as a new transcription)."""
    now = rt.clock()
    return rt.store.save(
        record,
        jobs.defer(record, now=now, until=now, reason_code=VANISHED_CODE, reason=reason),
    )
