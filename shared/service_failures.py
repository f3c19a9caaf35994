"""Is a failed transcription worth another try? The app's call, made once, here.

The service marks a job ``Failed`` with ``properties.error.code``. Internal errors,
timeouts and throttling are the service's own trouble and may pass on a new submission;
audio, format, channel, length and access codes describe the recording or the request and
will fail the same way again, so they are reported at once.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INPUT_ACCESS_CODES", "PERMANENT_CODES", "TRANSIENT_CODES", "is_transient_failure"]

TRANSIENT_CODES: Final = frozenset(
    {
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceTimeout",
        "Timeout",
        "TimedOut",
        "GatewayTimeout",
        "TooManyRequests",
        "Throttled",
        "TransientFailure",
    }
)
PERMANENT_CODES: Final = frozenset(
    {
        "InvalidAudioFormat",
        "EmptyAudioFile",
        "AudioLengthLimitExceeded",
        "BadChannelConfiguration",
        "InvalidChannelSpecification",
        "InvalidChannels",
        "InvalidRecordingsUri",
        "InaccessibleCustomerStorage",
        "NoLanguageIdentified",
        "MultipleLanguagesIdentified",
        "InvalidData",
        "InvalidTimeToLive",
        "QuotaViolation",
    }
)


# The service could not read the recording. Permanent, unless the SAS expired while the job
# waited to start (the completion step checks which and resubmits with a fresh SAS).
INPUT_ACCESS_CODES: Final = frozenset({"InvalidRecordingsUri", "InaccessibleCustomerStorage"})


def is_transient_failure(code: str | None) -> bool:
    """True when a job that failed with `code` may succeed if submitted again.

    Unknown codes count as permanent: a report the user can act on beats silent retries.
    """
    return bool(code) and code in TRANSIENT_CODES
