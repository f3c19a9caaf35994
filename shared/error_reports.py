"""The error report a user finds in the error container when a recording cannot be transcribed.

Pure: builds the JSON bytes; `shared.outcomes` writes them to ``<name>.json``. A report
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
from shared.service_failures import is_transient_failure

__all__ = ["REPORT_SCHEMA_VERSION", "advice_for", "build_error_report"]

REPORT_SCHEMA_VERSION: Final = 1

_FORMATS: Final = "WAV, MP3, FLAC, Ogg or Opus"
_CHANNELS_ADVICE: Final = (
    "The app transcribes mono or stereo call recordings (agent and customer on channels 0 "
    "and 1). Mix the recording down to mono or stereo and upload it again."
)
_LANGUAGE_ADVICE: Final = (
    "Check that the recording is speech in one of LANGUAGE_CANDIDATES (or SPEECH_LOCALE), "
    "adjust the setting if the calls are in another language, and upload it again."
)

# Reason code -> what the user can do. Every code the app writes into a report has an entry
# (tests/shared/test_error_reports.py finds them in the code), and so has every code the
# service fails a job with that is not transient; transient service codes share one advice.
_ADVICE: Final = {
    # Rejected by the header check (shared.audio_header), before anything reached Speech.
    "UnsupportedExtension": "Only .wav, .mp3, .flac, .ogg and .opus recordings are "
    f"transcribed. Convert the recording to one of them ({_FORMATS}), give it the matching "
    "extension and upload it again.",
    "EmptyFile": "The file holds no audio (zero bytes, or a header without samples). Upload "
    "the complete recording again, or export the call again if the recorder wrote it empty.",
    "TooLarge": "Split the recording or compress it (e.g. to MP3) below MAX_AUDIO_MB (the "
    "Speech service takes at most 1 GB per file) and upload the parts.",
    "NotAudio": "The bytes are not a recording in the format its extension claims. Check that "
    f"the file is a {_FORMATS} recording with the matching extension and upload it again.",
    "TruncatedHeader": "The file ends inside its header (an interrupted upload or copy). "
    "Upload the complete recording again.",
    "HeaderTooLarge": "The file carries so much metadata before its audio that the app stops "
    "looking for the audio. Export or save the recording again without the extra metadata "
    "(or convert it to plain WAV, FLAC or MP3) and upload it again.",
    "UnsupportedChannels": _CHANNELS_ADVICE,
    "UnsupportedCodec": "The file holds a codec the app does not accept. Convert the "
    "recording to PCM WAV, MP3, FLAC or Ogg Opus and upload it again.",
    # Failed by the app.
    "InputDeleted": "The recording was deleted before it could be transcribed; upload it again.",
    "TimedOut": "The job did not finish within JOB_TIMEOUT_HOURS. Upload the recording again "
    "later; if this repeats, check the Speech resource's health and quotas.",
    "OutOfAttempts": "The Speech service failed repeatedly. Upload the recording again later.",
    "CompletionFailed": "The transcription finished, but writing its outputs failed on every "
    "try. Look up the job key in the app's logs (storage access, OUTPUT_CONTAINER), fix the "
    "cause and upload the recording again.",
    "SubmitFailed": "Submitting the recording failed on every try. Look up the job key in the "
    "app's logs (Speech settings, key or role, storage access), fix the cause and upload "
    "the recording again.",
    "SubmitRejected": "The Speech service refused the submission as invalid. Check the app's "
    "Speech settings (SPEECH_LOCALE, model, options) against the message above, then upload "
    "the recording again.",
    "NoResult": "The Speech service reported success but produced no transcript. Upload the "
    "recording again; if this repeats, report it with the job key.",
    "InvalidResult": "The Speech service's result file could not be read. Upload the "
    "recording again; if this repeats, report it with the job key and the message above.",
    "Unknown": "The Speech service reported the job as failed without saying why. Upload the "
    "recording again; if this repeats, check the Speech resource's health.",
    # Failed by the app: the storage set-up, not the recording (shared.input_access,
    # shared.results_reader). Every recording fails the same way until it is fixed.
    "SasRefused": "The recording is fine: the storage account refused the Speech service's "
    "valid read-only SAS, as a locked-down account does (public network access or SAS "
    "disabled). Either set SPEECH_STORAGE_ACCESS=identity and let the Speech resource read "
    "with its own identity (system-assigned identity on, Storage Blob Data Reader on the "
    "storage account, a resource-instance rule or the trusted-services exception in the "
    "storage firewall), or let the account accept SAS from the Speech service. Then upload "
    "the recording again.",
    "SpeechIdentityDenied": "The recording is fine: with SPEECH_STORAGE_ACCESS=identity the "
    "Speech service reads recordings with its own system-assigned managed identity, and it "
    "could not. Check that the Speech resource's system-assigned identity is on, that it has "
    "Storage Blob Data Reader on the storage account (role assignments take up to 10 minutes "
    "to apply), and that the storage firewall lets it in (a resource-instance rule for the "
    "Speech resource, or the trusted Azure services exception). Or, if the account accepts "
    "SAS, set SPEECH_STORAGE_ACCESS=sas. Then upload the recording again.",
    "ResultsNotReadable": "The transcription finished, but its result file, which the Speech "
    "resource keeps in its own storage account (bring-your-own-storage, no SAS), could not be "
    "read. Set SPEECH_RESULTS_CONNECTION to a connection to that account (e.g. "
    "SpeechResultsStorage__blobServiceUri) whose identity has Storage Blob Data Reader there "
    "and can reach it through the network, as the message above says; then upload the "
    "recording again.",
    # Failed by the service with a permanent code (shared.service_failures).
    "InvalidAudioFormat": "The Speech service could not decode the audio. Convert it to PCM "
    "WAV and upload it again.",
    "EmptyAudioFile": "The Speech service found no audio in the file. Check that the "
    "recording has sound and upload it again.",
    "AudioLengthLimitExceeded": "The recording is longer than the service allows; split it "
    "and upload the parts.",
    "BadChannelConfiguration": _CHANNELS_ADVICE,
    "InvalidChannelSpecification": _CHANNELS_ADVICE,
    "InvalidChannels": _CHANNELS_ADVICE,
    "InvalidRecordingsUri": "The Speech service could not read the recording. Check that the "
    "storage account is reachable from the Speech resource and SAS_VALIDITY_HOURS is long enough.",
    "InaccessibleCustomerStorage": "The Speech service could not read the recording. Check the "
    "storage account's network rules and SAS_VALIDITY_HOURS.",
    "NoLanguageIdentified": _LANGUAGE_ADVICE,
    "MultipleLanguagesIdentified": _LANGUAGE_ADVICE,
    "InvalidData": "The Speech service found the recording or the request invalid. Check the "
    "message above; convert the recording to PCM WAV and upload it again.",
    "InvalidTimeToLive": "The Speech service refused the job's time-to-live. Set "
    "TIME_TO_LIVE_HOURS within the service's range and upload the recording again.",
    "QuotaViolation": "The Speech resource's quota is used up. Wait for it to reset or raise "
    "it (pricing tier), then upload the recording again.",
}
_TRANSIENT_ADVICE: Final = (
    "The Speech service kept failing with a temporary error. Upload the recording again "
    "later; if this repeats, check the Speech resource's health and quotas."
)
_GENERIC_ADVICE: Final = (
    "Check the message above; if the recording is valid, upload it again. "
    "The job key identifies this attempt in the app's logs and job table."
)


def advice_for(code: str) -> str:
    """What a user can do about error `code` (generic advice for a code nobody foresaw)."""
    if code in _ADVICE:
        return _ADVICE[code]
    return _TRANSIENT_ADVICE if is_transient_failure(code) else _GENERIC_ADVICE


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
