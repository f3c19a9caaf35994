"""The app's exception tree: every error the app raises on purpose is one of these.

    TranscriptionAppError
    ├── ConfigurationError         a setting is missing or malformed (raised at start-up)
    ├── InputRejectedError         the recording cannot be transcribed; permanent, has reason_code
    ├── JobConflictError           a conditional table update lost a race (ETag changed)
    ├── OperatorRequestError       an operator-view request cannot be answered as asked
    │                              (bad filter, unknown job, a retry its state refuses)
    ├── StorageTransientError      Storage answered 429/5xx or could not be reached; retry later
    ├── ResultsNotReadableError    a result file without SAS cannot be read as configured
    │   └── ResultsAccessDeniedError   the results account refused the app (403); may heal
    └── SpeechServiceError         a call to the Speech service failed; keeps status and codes
        ├── SpeechTransientError   retryable: 429, 5xx, timeouts, connection errors
        │   └── SpeechThrottledError   429 Too Many Requests (retry_after from the header)
        └── SpeechPermanentError   not retryable: the request itself is wrong
            ├── SpeechAuthError        401/403: key, token or role assignment is wrong
            ├── SpeechNotFoundError    404: the transcription (or file) does not exist
            └── SpeechRequestError     400/409/415/...: invalid request, see code/inner_code

Retryable vs terminal is decided here, once, by type: callers catch `SpeechTransientError`
to retry or defer, and everything else is terminal for that attempt. Messages never carry
secrets: URLs are logged and stored without their query string (see `redact_url`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

_URL_RE: Final = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` without its query string and fragment, where SAS tokens and signatures live."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def redact_urls(text: str) -> str:
    """`text` with every http(s) URL in it cut down by `redact_url` (a service's message, a
    log line quoting a request)."""
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)


class TranscriptionAppError(Exception):
    """Base of every error this app raises on purpose."""


class ConfigurationError(TranscriptionAppError):
    """A setting is missing or malformed. The message names the setting and what is expected."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"Setting {setting}: {problem}")


class InputRejectedError(TranscriptionAppError):
    """The input recording cannot be transcribed; retrying will not help.

    `reason_code` is a stable, machine-readable code written into the error report
    (e.g. `EmptyFile`, `NotAudio`, `UnsupportedExtension`, `TooLarge`); the message says
    what is wrong and what the user can do about it.
    """

    def __init__(self, reason_code: str, message: str) -> None:
        self.reason_code = reason_code
        self.message = message
        super().__init__(f"{reason_code}: {message}")


class JobConflictError(TranscriptionAppError):
    """A conditional update of a job record failed: another run changed it first."""


class OperatorRequestError(TranscriptionAppError):
    """An operator-view request (API, status page, CLI) that cannot be answered as asked.

    `status` is the HTTP status it maps to (400 bad filter, 404 unknown job, 409 a retry the
    job's state refuses); `code` a stable name; the message says what and why, `what_to_do`
    what to do. Never retryable as is.
    """

    def __init__(self, status: int, code: str, message: str, what_to_do: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.what_to_do = what_to_do
        super().__init__(f"{code}: {message} {what_to_do}")


class StorageTransientError(TranscriptionAppError):
    """Storage is throttling or unreachable; the operation can be retried later."""


class ResultsNotReadableError(TranscriptionAppError):
    """A result file whose URL has no SAS (bring-your-own-storage) cannot be read with the
    app's configuration: SPEECH_RESULTS_CONNECTION is missing or names another account.

    Retrying cannot help until an operator changes the settings. `setting` names the one to
    change; the message says what and why, and never holds a credential.
    """

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        self.message = message
        super().__init__(message)


class ResultsAccessDeniedError(ResultsNotReadableError):
    """The results account refused the app's credential (403, or no token could be had).

    A configuration problem too (a missing role, network rules), but one that often heals by
    itself: role assignments take minutes to propagate after a deployment. Callers retry it
    for a while before reporting it.
    """


class SpeechServiceError(TranscriptionAppError):
    """A call to the Speech service failed.

    Attributes keep what the service said: HTTP `status` (None for transport errors), the
    top-level error `code`, the detailed `inner_code` (from `innerError.code`), the
    `message`, and `retry_after` seconds when the service sent a `Retry-After` header.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        inner_code: str | None = None,
        retry_after: float | None = None,
        operation: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.inner_code = inner_code
        self.retry_after = retry_after
        self.operation = operation
        where = f"{operation}: " if operation else ""
        codes = "/".join(c for c in (code, inner_code) if c)
        status_text = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{where}{status_text} {codes} {message}".replace("  ", " ").strip())

    @property
    def detail_code(self) -> str | None:
        """The most specific code the service gave (inner code first)."""
        return self.inner_code or self.code


class SpeechTransientError(SpeechServiceError):
    """Retryable: throttling, server errors, timeouts and connection failures."""


class SpeechThrottledError(SpeechTransientError):
    """429 Too Many Requests: slow down; `retry_after` says for how long when known."""


class SpeechPermanentError(SpeechServiceError):
    """Not retryable as is: the request, the credentials or the target is wrong."""


class SpeechAuthError(SpeechPermanentError):
    """401/403: the key or token is wrong, or the identity lacks the role."""


class SpeechNotFoundError(SpeechPermanentError):
    """404: the transcription or file does not exist (deleted, expired or never created)."""


class SpeechRequestError(SpeechPermanentError):
    """400/409/415 and other client errors: the request was rejected as invalid."""
