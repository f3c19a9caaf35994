"""The error report a user finds in the error container when a recording cannot be transcribed.

Pure: builds the JSON bytes; `shared.pipeline_io` writes them to ``<name>.json``. A report
says what happened (reason code and message from the app or the service), what to do about
it, and which job and blob version it belongs to. It never holds a SAS, key or token: the
transcription is named by its id and its URL without query.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from shared.errors import redact_url
from shared.jobs import JobRecord

__all__ = ["REPORT_SCHEMA_VERSION", "advice_for", "build_error_report"]

REPORT_SCHEMA_VERSION: Final = 1

# Reason code -> what the user can do. Codes not listed get the generic advice.
_ADVICE: Final = {
    "EmptyFile": "The file has no bytes. Upload the recording again.",
    "NotAudio": "The file is not a recording the app understands. Upload a WAV or MP3 file.",
    "TruncatedHeader": "The file ends inside its header. Upload the complete recording again.",
    "UnsupportedExtension": "Upload the recording as .wav or .mp3.",
    "UnsupportedFormat": "Convert the recording to PCM WAV or MP3 and upload it again.",
    "TooLarge": "Split the recording or compress it (e.g. MP3) below the size limit.",
    "InputDeleted": "The recording was deleted before it could be transcribed; upload it again.",
    "TimedOut": "The Speech service did not finish in time. Upload the recording again later; "
    "if this repeats, check the Speech resource's health and quotas.",
    "OutOfAttempts": "The Speech service failed repeatedly. Upload the recording again later.",
    "InvalidAudioFormat": "The Speech service could not decode the audio. Convert it to PCM WAV.",
    "EmptyAudioFile": "The Speech service found no audio in the file.",
    "AudioLengthLimitExceeded": "The recording is longer than the service allows; split it.",
    "InvalidRecordingsUri": "The Speech service could not read the recording. Check that the "
    "storage account is reachable from the Speech resource and SAS_VALIDITY_HOURS is long enough.",
    "InaccessibleCustomerStorage": "The Speech service could not read the recording. Check the "
    "storage account's network rules and SAS_VALIDITY_HOURS.",
}
_GENERIC_ADVICE: Final = (
    "Check the message above; if the recording is valid, upload it again. "
    "The job key identifies this attempt in the app's logs and job table."
)


def advice_for(code: str) -> str:
    """What a user can do about error `code`."""
    return _ADVICE.get(code, _GENERIC_ADVICE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build_error_report(
    record: JobRecord,
    *,
    outcome: str,
    reason_code: str,
    message: str,
    now: datetime,
    service_error_code: str = "",
) -> bytes:
    """The report for `record`, which ends as `outcome` (``rejected`` or ``failed``)."""
    report: dict[str, Any] = {
        "schemaVersion": REPORT_SCHEMA_VERSION,
        "outcome": outcome,
        "reasonCode": reason_code,
        "message": message,
        "whatToDo": advice_for(reason_code),
        "input": {
            "container": record.container,
            "name": record.blob_name,
            "etag": record.blob_etag,
            "size": record.blob_size,
        },
        "jobKey": record.key,
        "attempts": record.attempts,
        "created": _iso(record.created),
        "submitted": _iso(record.submitted_at),
        "reported": now.isoformat(),
    }
    if service_error_code:
        report["serviceErrorCode"] = service_error_code
    if record.transcription_id:
        report["transcriptionId"] = record.transcription_id
    if record.transcription_url:
        report["transcriptionUrl"] = redact_url(record.transcription_url)
    if record.service_status:
        report["serviceStatus"] = record.service_status
    return json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
