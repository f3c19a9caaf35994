"""What a failed Speech exchange means: an HTTP answer or a transport failure -> a typed error.

Pure: it reads an `httpx.Response` that has already arrived (or the exception httpx raised)
and returns one of the errors of `shared/errors.py`; it sends nothing and sleeps on nothing.

    transport error / timeout      -> SpeechTransientError (status None)
    429                            -> SpeechThrottledError (retry_after from Retry-After)
    5xx, 408                       -> SpeechTransientError (SpeechThrottledError when its
                                      Retry-After is longer than max_retry_wait)
    401, 403                       -> SpeechAuthError
    404                            -> SpeechNotFoundError
    other 4xx (400, 409, 415, ...) -> SpeechRequestError
    2xx with an undecodable body   -> SpeechTransientError (`decode_json`)

Every message is scrubbed on the way: URLs lose their query strings, ``sig=`` values are
masked wherever they appear, and the key or token just sent is replaced by ``***``. The
service does quote request URLs (with their SAS) and, through gateways, sometimes the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

import httpx

from shared.errors import (
    SpeechAuthError,
    SpeechNotFoundError,
    SpeechPermanentError,
    SpeechRequestError,
    SpeechServiceError,
    SpeechThrottledError,
    SpeechTransientError,
    redact_urls,
)
from shared.rate_limit import RateLimitedError
from shared.retry import parse_retry_after

__all__ = [
    "decode_json",
    "error_for_response",
    "error_for_transport_failure",
    "proves_not_processed",
    "scrub",
]

T = TypeVar("T")

_SIG_RE: Final = re.compile(r"(sig|signature)=[^&\s'\"]+", re.IGNORECASE)
# A secret shorter than this is not replaced: it would blank out ordinary words.
_MIN_SECRET_CHARS: Final = 8
# Failures that prove the request never reached the service (or was not processed by it).
_NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_NOT_PROCESSED_STATUSES: Final = frozenset({429, 503})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` without URL queries, SAS signatures or any of `secrets`."""
    text = redact_urls(text)
    text = _SIG_RE.sub(lambda m: f"{m.group(1)}=***", text)
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return text.strip()


def error_for_response(
    operation: str,
    response: httpx.Response,
    *,
    secrets: Iterable[str],
    max_retry_wait: float,
) -> SpeechServiceError:
    """The typed error for a non-2xx `response` (see the table above).

    A transient answer whose `Retry-After` is longer than `max_retry_wait` becomes
    `SpeechThrottledError`: longer than a Function may wait, so the caller defers, as for 429.
    """
    status = response.status_code
    code, inner_code, message = _error_fields(response)
    message = scrub(message or response.reason_phrase or "", secrets) or f"HTTP {status}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    error_type: type[SpeechServiceError]
    if status == 429:
        error_type = SpeechThrottledError
    elif status >= 500 or status == 408:
        error_type = SpeechTransientError
    elif status in (401, 403):
        error_type = SpeechAuthError
    elif status == 404:
        error_type = SpeechNotFoundError
    elif 400 <= status < 500:
        error_type = SpeechRequestError
    else:
        error_type = SpeechPermanentError
        message = f"unexpected HTTP {status}: {message}"
    if error_type is SpeechTransientError and (retry_after or 0.0) > max_retry_wait:
        error_type = SpeechThrottledError
    return error_type(
        message,
        status=status,
        code=code,
        inner_code=inner_code,
        retry_after=retry_after,
        operation=operation,
    )


def error_for_transport_failure(
    operation: str, method: str, shown_url: str, exc: httpx.TransportError, secrets: Iterable[str]
) -> SpeechTransientError:
    """The error for a request that got no answer (refused, reset, timed out...).

    Raise it inside the ``except`` that caught `exc`, ``from None``: the original text can
    quote the SAS URL, and `proves_not_processed` reads the original from ``__context__``.
    """
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    detail = scrub(str(exc), secrets) or "no detail"
    return SpeechTransientError(
        f"{method} {shown_url} {kind}: {type(exc).__name__}: {detail}", operation=operation
    )


def proves_not_processed(exc: SpeechTransientError) -> bool:
    """True when the failure proves the service did not act on the request.

    So: the client's own limiter held it back, the service said 429 or 503, or the
    connection was never made. A read timeout, a reset or a 500 prove nothing: the service
    may have carried the request out before the answer was lost.
    """
    if isinstance(exc, RateLimitedError):
        return True
    if exc.status is not None:
        return exc.status in _NOT_PROCESSED_STATUSES
    return isinstance(exc.__context__, _NOT_SENT_ERRORS)


def decode_json(operation: str, response: httpx.Response, decode: Callable[[Any], T]) -> T:
    """`decode` of a 2xx JSON body; a garbled one (a proxy's HTML page...) is transient."""
    try:
        return decode(response.json())
    except ValueError as exc:
        raise SpeechTransientError(
            f"unexpected response body: {exc}",
            status=response.status_code,
            operation=operation,
        ) from None


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """code, innerError.code and message from an error body; tolerant of any body."""
    try:
        data = response.json()
    except ValueError:
        return None, None, None
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        data = data["error"]  # some gateways wrap the error object
    if not isinstance(data, Mapping):
        return None, None, None
    code = data.get("code")
    message = data.get("message")
    inner = data.get("innerError")
    inner_code = inner.get("code") if isinstance(inner, Mapping) else None
    return (
        str(code) if isinstance(code, str | int) and code != "" else None,
        inner_code if isinstance(inner_code, str) and inner_code else None,
        message if isinstance(message, str) else None,
    )
