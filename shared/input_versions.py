"""Is the job's input still the version it was made for? Deleted, overwritten, or unchanged.

Completion asks this twice. Before writing transcripts: a job for an older version of an
overwritten blob must not overwrite the newer version's outputs (the newer version has its
own job), so it ends as ``Superseded`` without outputs or report. After the service failed a
job because it could not read the recording (``InvalidRecordingsUri``,
``InaccessibleCustomerStorage``): a deleted input is reported as ``InputDeleted``; an
unchanged one means the service could not reach it for a while (a storage outage, a SAS
that expired before the job started, network rules), which another submission with a fresh
SAS may fix, so it counts as a transient failure.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from azure.core.exceptions import ResourceNotFoundError

from shared import jobs
from shared.storage import storage_errors

if TYPE_CHECKING:
    from shared.jobs import JobRecord
    from shared.runtime import Runtime

log = logging.getLogger(__name__)

__all__ = [
    "SUPERSEDED_CODE",
    "InputStatus",
    "input_status",
    "supersede",
]

SUPERSEDED_CODE: Final = "Superseded"


class InputStatus(StrEnum):
    """The job's input blob now, compared with the version the job was made for."""

    SAME = "same"
    GONE = "gone"
    CHANGED = "changed"


def _bare(etag: str) -> str:
    return etag.strip().strip('"')


def input_status(rt: Runtime, record: JobRecord) -> InputStatus:
    """Read the input's properties (one HEAD request) and compare its ETag with the job's."""
    blob = rt.storage.blob_client(record.container, record.blob_name)
    try:
        with storage_errors("read input properties"):
            props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return InputStatus.GONE
    if _bare(str(props.etag)) != _bare(record.blob_etag):
        return InputStatus.CHANGED
    return InputStatus.SAME


def supersede(rt: Runtime, record: JobRecord) -> JobRecord:
    """End a job whose input was overwritten: no outputs, no report (the new version's job
    writes those), its server-side transcription deleted."""
    log.info(
        "%s: the recording was overwritten meanwhile; this version's results are dropped "
        "(the new version has its own job)",
        jobs.describe(record),
    )
    if record.transcription_id:
        rt.speech.delete(record.transcription_id)
    return rt.store.save(
        record,
        jobs.fail(
            record,
            now=rt.clock(),
            error_code=SUPERSEDED_CODE,
            error_message="the recording was overwritten before this version's job finished",
        ),
    )
