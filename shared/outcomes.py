"""Ending a job without transcripts: write the error report, clean up, record the outcome.

Order matters for crash safety: the report is written first (idempotent overwrite), then the
server-side transcription is deleted (a 404 is fine), then the record moves to its terminal
state. A crash anywhere in between leaves the job active, and the next run repeats the steps.
"""

from __future__ import annotations

import logging

from shared import jobs
from shared.error_reports import build_error_report
from shared.jobs import JobRecord
from shared.output_names import error_report_name
from shared.runtime import Runtime
from shared.storage import upload

log = logging.getLogger(__name__)

__all__ = ["fail_job", "reject_job", "write_error_report"]


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
