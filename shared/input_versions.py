"""Is the job's input still the version it was made for? Deleted, overwritten, or unchanged.

Completion (`shared.complete`) asks this before writing transcripts: a job for an older
version of an overwritten blob must not overwrite the newer version's outputs (the newer
version has its own job). And after the service failed a job because it could not read the
recording: a deleted input is reported as ``InputDeleted``, while an unchanged one means the
service could not reach it for a while (a storage outage, a SAS that expired before the job
started), which another submission with a fresh SAS may fix.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError

from shared.storage import storage_errors

if TYPE_CHECKING:
    from shared.jobs import JobRecord
    from shared.runtime import Runtime

__all__ = ["InputStatus", "header_etag", "input_status"]


class InputStatus(StrEnum):
    """The job's input blob now, compared with the version the job was made for."""

    SAME = "same"
    GONE = "gone"
    CHANGED = "changed"


def _bare(etag: str) -> str:
    return etag.strip().strip('"')


def header_etag(etag: str) -> str:
    """An ETag as blob properties return it (quoted); listings may give it without quotes.

    Job keys are made from the quoted form (`handle_new_blob` reads the properties).
    """
    return f'"{_bare(etag)}"'


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
