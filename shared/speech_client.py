"""Synchronous client for Azure AI Speech batch transcription (REST, api-version 2024-11-15).

All network I/O goes through one `httpx.Client` (tests pass `httpx.MockTransport`). Every
failure leaves as one of the typed errors of `shared/errors.py`:

    transport error / timeout      -> SpeechTransientError (status None)
    429                            -> SpeechThrottledError (retry_after from Retry-After)
    5xx, 408                       -> SpeechTransientError (SpeechThrottledError when its
                                      Retry-After is longer than max_retry_wait)
    401, 403                       -> SpeechAuthError
    404                            -> SpeechNotFoundError
    other 4xx (400, 409, 415, ...) -> SpeechRequestError
    2xx with an undecodable body   -> SpeechTransientError

Transient errors are retried per `shared.retry.RetryPolicy` (bounded attempts, capped
exponential backoff with jitter, `Retry-After` honoured). A `Retry-After` longer than
`max_retry_wait` is not slept on: the error is raised at once so the caller defers the job.

Secrets never leave this module in messages or logs: the key and the bearer token are
scrubbed from error texts, URLs are logged without their query (SAS signatures live there),
any URL quoted by the service in an error message is cut down the same way, and httpx's
own INFO line per request gets the same treatment (a filter on the `httpx` logger).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from shared.errors import (
    SpeechAuthError,
    SpeechNotFoundError,
    SpeechPermanentError,
    SpeechRequestError,
    SpeechServiceError,
    SpeechThrottledError,
    SpeechTransientError,
    redact_url,
)
from shared.rate_limit import (
    CallPurpose,
    RateLimit,
    RateLimitedError,
    RateLimiter,
    shared_limiter,
)
from shared.retry import RetryPolicy, parse_retry_after
from shared.speech_models import Transcription, TranscriptionFile

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

    from shared.settings import Settings

__all__ = ["COGNITIVE_SERVICES_SCOPE", "SpeechClient"]

logger = logging.getLogger(__name__)

COGNITIVE_SERVICES_SCOPE: Final = "https://cognitiveservices.azure.com/.default"
# Refresh a token this long before it expires, so no request goes out with a dying token.
_TOKEN_REFRESH_MARGIN_S: Final = 300.0
# Failures that prove the request never reached (or was not processed by) the service.
_NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_NOT_PROCESSED_STATUSES: Final = frozenset({429, 503})
_URL_RE: Final = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)
_SIG_RE: Final = re.compile(r"(sig|signature)=[^&\s'\"]+", re.IGNORECASE)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Which share of the rate limit each operation draws from (see shared/rate_limit.py).
_PURPOSES: Final = {
    "submit": CallPurpose.SUBMISSION,
    "get": CallPurpose.STATUS,
    "list": CallPurpose.STATUS,
    "list_files": CallPurpose.COMPLETION,
    "delete": CallPurpose.COMPLETION,
}
# A submission waits this long for a slot, then gives up so the job is deferred: a blob
# trigger should not hold its slot for long while completions take the quota.
SUBMIT_MAX_WAIT_S: Final = 10.0
# A 429 without Retry-After still pauses every caller this long.
_DEFAULT_PAUSE_S: Final = 1.0


class _RedactUrlQueries(logging.Filter):
    """Strip query strings from URLs in httpx's own log records.

    httpx logs every request at INFO as `HTTP Request: GET <full URL>`, which for a result
    download is a SAS URL with its signature, and the Functions host ships INFO logs to
    Application Insights. The record is rewritten, not dropped, so the line stays useful.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(arg))
                if isinstance(arg, httpx.URL) or (isinstance(arg, str) and "://" in arg)
                else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = _URL_RE.sub(lambda m: redact_url(m.group(0)), record.msg)
        return True


def _install_log_redaction() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrlQueries) for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactUrlQueries())


_install_log_redaction()

T = TypeVar("T")


class SpeechClient:
    """Speech batch transcription over REST; thread-safe, one connection pool per instance.

    Authenticate with `key` (`Ocp-Apim-Subscription-Key`) or, when no key is given, with a
    Microsoft Entra token from `credential` (scope `COGNITIVE_SERVICES_SCOPE`), cached until
    five minutes before it expires. `request_count` counts calls made to the Speech API
    (every try, retries included; result downloads excluded: they do not use the quota).
    """

    def __init__(
        self,
        endpoint: str,
        api_version: str = "2024-11-15",
        *,
        key: str | None = None,
        credential: TokenCredential | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
        rate_limit: RateLimit | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        parts = urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("endpoint must be an http(s) URL without a query string")
        if not key and credential is None:
            raise ValueError("SpeechClient needs a key or a token credential")
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self._api_version = api_version
        self._key = key or None
        self._credential = None if self._key else credential
        self._token: AccessToken | None = None
        self._policy = RetryPolicy(attempts=max_attempts, max_retry_wait=max_retry_wait)
        self._lock = threading.Lock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self.request_count = 0
        # One limiter per endpoint and process: the quota is the resource's, not ours.
        self._limiter = limiter or (shared_limiter(self._base, rate_limit) if rate_limit else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechClient:
        """A client for the app's settings: the key when set, else DefaultAzureCredential."""
        credential: TokenCredential | None = None
        if not settings.speech_key:
            # Imported only here: azure.identity is heavy and unused with a key (cold start).
            from azure.identity import DefaultAzureCredential  # noqa: PLC0415

            credential = DefaultAzureCredential()
        return cls(
            settings.speech_endpoint,
            settings.speech_api_version,
            key=settings.speech_key.reveal() or None,
            credential=credential,
            timeout=settings.speech_timeout_seconds,
            max_attempts=settings.speech_max_attempts,
            max_connections=max(16, settings.speech_max_concurrency),
            rate_limit=settings.speech_rate_limit,
        )

    def __repr__(self) -> str:
        auth = "key" if self._key else "token"
        return f"SpeechClient({self._base!r}, {self._api_version!r}, auth={auth})"

    # ----------------------------------------------------------------- operations

    def submit(self, body: Mapping[str, Any]) -> Transcription:
        """Create a transcription (`POST /transcriptions:submit`, 201).

        Retry choice: a failure that proves nothing was created (connection refused, 429,
        503) is simply retried. A failure after the request may have reached the service
        (read timeout, connection reset, 500/502/504, garbled 201) could mean the job exists:
        before posting again, the client looks the job up by `displayName` and returns it
        when found, so a retry does not create a duplicate. This relies on `displayName`
        being unique per recording (the pipeline uses the job key).

        When it finally gives up: `SpeechThrottledError` means no attempt of this call can
        have created a job (defer and post again); any other `SpeechTransientError` means
        one may exist (look it up by `displayName` before posting again, as the pipeline's
        orphan search does — that also covers a crash in the middle of this call).
        """
        url = f"{self._base}/speechtotext/transcriptions:submit"
        display_name = body.get("displayName")
        maybe_created = False
        try:
            for attempt in self._policy.attempts_iter():
                with attempt:
                    if maybe_created and isinstance(display_name, str) and display_name:
                        existing = self._find_once("submit", display_name)
                        if existing is not None:
                            logger.info(
                                "speech submit: found job %s by displayName after an "
                                "ambiguous failure; not submitting again",
                                existing.id,
                            )
                            return existing
                    try:
                        response = self._send("submit", "POST", url, json=dict(body))
                        return _parse("submit", response, Transcription.from_json)
                    except SpeechTransientError as exc:
                        maybe_created = maybe_created or _may_have_been_processed(exc)
                        raise
        except SpeechThrottledError as exc:
            if not maybe_created:
                raise
            # Throttled now, but an earlier attempt may have created the job: say so by type.
            raise SpeechTransientError(
                f"{exc.message} (an earlier attempt may have created the job)",
                status=exc.status,
                code=exc.code,
                inner_code=exc.inner_code,
                retry_after=exc.retry_after,
                operation="submit",
            ) from None
        raise AssertionError("unreachable")

    def get(self, transcription_id: str) -> tuple[Transcription, float | None]:
        """A transcription and the `Retry-After` seconds the service asked for (None if not)."""
        url = self._transcription_url(transcription_id)

        def parse(response: httpx.Response) -> tuple[Transcription, float | None]:
            transcription = _parse("get", response, Transcription.from_json)
            return transcription, parse_retry_after(response.headers.get("Retry-After"))

        return self._call("get", "GET", url, parse)

    def iter_transcriptions(
        self, *, page_size: int = 100, filter: str | None = None
    ) -> Iterator[Transcription]:
        """All transcriptions (optionally OData-filtered), `page_size` per request.

        Follows `@nextLink`; each page is retried on its own. Entries the client cannot
        decode are skipped with a warning rather than failing the whole listing.
        """
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be 1..100, got {page_size}")
        params: dict[str, Any] = {"top": page_size}
        if filter:
            params["filter"] = filter
        yield from self._paged(
            "list", f"{self._base}/speechtotext/transcriptions", params, Transcription.from_json
        )

    def find_by_display_name(self, display_name: str) -> list[Transcription]:
        """Transcriptions whose `displayName` equals `display_name` exactly (oldest first)."""
        found = [
            t
            for t in self.iter_transcriptions(filter=_display_name_filter(display_name))
            if t.display_name == display_name
        ]
        return sorted(found, key=lambda t: t.created or _EPOCH)

    def list_files(
        self, transcription_id: str, *, sas_lifetime_minutes: int | None = None
    ) -> list[TranscriptionFile]:
        """All files of a finished job (every page), with fresh SAS `content_url`s."""
        params: dict[str, Any] = {}
        if sas_lifetime_minutes is not None:
            params["sasLifetimeMinutes"] = sas_lifetime_minutes
        url = f"{self._transcription_url(transcription_id)}/files"
        return list(self._paged("list_files", url, params, TranscriptionFile.from_json))

    def download(self, content_url: str) -> bytes:
        """The bytes behind a file's SAS `contentUrl`, sent without any credential.

        Not counted in `request_count`. 403 (an expired SAS) maps to SpeechAuthError and 404
        to SpeechNotFoundError: list the files again for fresh URLs.
        """
        return self._call("download", "GET", content_url, lambda r: r.content, authenticated=False)

    def delete(self, transcription_id: str) -> None:
        """Delete a transcription and its results; a job that is already gone is fine."""
        try:
            self._call(
                "delete", "DELETE", self._transcription_url(transcription_id), lambda _r: None
            )
        except SpeechNotFoundError:
            logger.debug("speech delete: %s was already gone", transcription_id)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> SpeechClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- plumbing

    def _transcription_url(self, transcription_id: str) -> str:
        if not transcription_id or "/" in transcription_id or "?" in transcription_id:
            raise ValueError(f"not a transcription id: {transcription_id!r}")
        return f"{self._base}/speechtotext/transcriptions/{quote(transcription_id, safe='')}"

    def _call(
        self,
        operation: str,
        method: str,
        url: str,
        parse: Callable[[httpx.Response], T],
        *,
        params: Mapping[str, Any] | None = None,
        authenticated: bool = True,
    ) -> T:
        """One logical call: send, check, parse — retried as a whole on transient errors."""
        for attempt in self._policy.attempts_iter():
            with attempt:
                response = self._send(
                    operation, method, url, params=params, authenticated=authenticated
                )
                return parse(response)
        raise AssertionError("unreachable")

    def _paged(
        self,
        operation: str,
        url: str,
        params: Mapping[str, Any],
        decode: Callable[[Mapping[str, Any]], T],
    ) -> Iterator[T]:
        next_url: str | None = url
        next_params: Mapping[str, Any] | None = params
        while next_url:
            page = self._call(
                operation,
                "GET",
                next_url,
                lambda r: _parse(operation, r, _page),
                params=next_params,
            )
            values, link = page
            for index, item in enumerate(values):
                try:
                    yield decode(item)
                except ValueError as exc:
                    logger.warning("speech %s: skipping entry %d: %s", operation, index, exc)
            next_url = self._rebase_next_link(link) if link else None
            next_params = None

    def _rebase_next_link(self, link: str) -> str:
        """`@nextLink` pointed back at our endpoint, keeping its path/query and api-version.

        The credential is only ever sent to the configured host, whatever host the link names.
        """
        parts = urlsplit(link)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if not any(name == "api-version" for name, _ in query):
            query.append(("api-version", self._api_version))
        return urlunsplit(
            (self._scheme, self._netloc, parts.path, urlencode(query, quote_via=quote), "")
        )

    def _find_once(self, operation: str, display_name: str) -> Transcription | None:
        """First page of a displayName lookup, no retries of its own (runs inside one)."""
        response = self._send(
            operation,
            "GET",
            f"{self._base}/speechtotext/transcriptions",
            params={"filter": _display_name_filter(display_name), "top": 100},
        )
        values, _ = _parse(operation, response, _page)
        for item in values:
            try:
                transcription = Transcription.from_json(item)
            except ValueError:
                continue
            if transcription.display_name == display_name:
                return transcription
        return None

    def _send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """One HTTP request; returns a 2xx response or raises the mapped error."""
        headers: dict[str, str] = {}
        request_url = httpx.URL(url)
        if authenticated:
            headers = self._auth_headers(operation)
            extra = dict(params or {})
            if "api-version" not in request_url.params:
                extra["api-version"] = self._api_version
            # Merged, not replaced: a @nextLink carries its own skip/top/filter.
            request_url = request_url.copy_merge_params(extra)
            self._take_slot(operation)
            with self._lock:
                self.request_count += 1
        shown = redact_url(url)
        started = time.perf_counter()
        try:
            response = self._http.request(method, request_url, json=json, headers=headers)
        except httpx.TransportError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug(
                "speech %s %s failed after %.0f ms: %s",
                method,
                shown,
                elapsed_ms,
                type(exc).__name__,
            )
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
            detail = self._scrub(str(exc), headers) or "no detail"
            # `from None`: the original exception's text could quote the SAS URL.
            raise SpeechTransientError(
                f"{method} {shown} {kind}: {type(exc).__name__}: {detail}", operation=operation
            ) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "speech %s %s -> %d in %.0f ms", method, shown, response.status_code, elapsed_ms
        )
        if response.is_success:
            return response
        failure = self._error_for(operation, response, headers)
        if response.status_code == 429 and self._limiter is not None:
            # Everyone in this process backs off together, not each thread after ~1 s.
            self._limiter.pause(
                failure.retry_after if failure.retry_after is not None else _DEFAULT_PAUSE_S
            )
        if response.status_code == 401 and self._credential is not None:
            with self._lock:
                self._token = None  # the token may have been revoked; fetch a new one next time
        raise failure

    def _take_slot(self, operation: str) -> None:
        """Wait for the rate limiter; raise RateLimitedError (nothing sent) when it says no.

        Submissions wait briefly (the caller defers the job); completion and status calls
        wait up to `max_retry_wait`, as they would for a Retry-After.
        """
        if self._limiter is None:
            return
        purpose = _PURPOSES.get(operation, CallPurpose.STATUS)
        max_wait = (
            SUBMIT_MAX_WAIT_S if purpose is CallPurpose.SUBMISSION else self._policy.max_retry_wait
        )
        if self._limiter.acquire(purpose, max_wait=max_wait):
            return
        wait = max(self._limiter.wait_estimate(purpose), _DEFAULT_PAUSE_S)
        raise RateLimitedError(
            f"client-side rate limit {self._limiter.limit} reached; not sent",
            retry_after=wait,
            operation=operation,
        )

    def _auth_headers(self, operation: str) -> dict[str, str]:
        if self._key:
            return {"Ocp-Apim-Subscription-Key": self._key}
        return {"Authorization": f"Bearer {self._bearer_token(operation)}"}

    def _bearer_token(self, operation: str) -> str:
        assert self._credential is not None
        with self._lock:
            token = self._token
            if token is None or token.expires_on - _TOKEN_REFRESH_MARGIN_S <= time.time():
                try:
                    token = self._credential.get_token(COGNITIVE_SERVICES_SCOPE)
                except Exception as exc:  # noqa: BLE001 - credential chains raise many types
                    raise SpeechAuthError(
                        "could not get a Microsoft Entra token for Speech "
                        f"({type(exc).__name__}); check the managed identity or sign-in "
                        "and its 'Cognitive Services User' role, or set SPEECH_KEY",
                        operation=operation,
                    ) from None
                self._token = token
            return token.token

    def _error_for(
        self, operation: str, response: httpx.Response, sent_headers: Mapping[str, str]
    ) -> SpeechServiceError:
        status = response.status_code
        code, inner_code, message = _error_fields(response)
        message = self._scrub(message or response.reason_phrase or "", sent_headers)
        message = message or f"HTTP {status}"
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
        if (
            error_type is SpeechTransientError
            and retry_after is not None
            and retry_after > self._policy.max_retry_wait
        ):
            # Longer than we may wait inside a Function: tell the caller to defer, as for 429.
            error_type = SpeechThrottledError
        return error_type(
            message,
            status=status,
            code=code,
            inner_code=inner_code,
            retry_after=retry_after,
            operation=operation,
        )

    def _scrub(self, text: str, sent_headers: Mapping[str, str]) -> str:
        """`text` without URL queries, SAS signatures, the key or the token just sent."""
        text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
        text = _SIG_RE.sub(lambda m: f"{m.group(1)}=***", text)
        secrets = [self._key or ""]
        secrets += [value.removeprefix("Bearer ") for value in sent_headers.values()]
        for secret in secrets:
            if len(secret) >= 8:  # a short value would blank out ordinary words
                text = text.replace(secret, "***")
        return text.strip()


def _may_have_been_processed(exc: SpeechTransientError) -> bool:
    """False only when the failure proves the service did not act on the request."""
    if isinstance(exc, RateLimitedError):
        return False  # the client's own limiter held it back: nothing was sent
    if exc.status is not None:
        return exc.status not in _NOT_PROCESSED_STATUSES
    return not isinstance(exc.__context__, _NOT_SENT_ERRORS)


def _display_name_filter(display_name: str) -> str:
    # OData string literal: single quotes are escaped by doubling them.
    return "displayName eq '{}'".format(display_name.replace("'", "''"))


def _parse(operation: str, response: httpx.Response, decode: Callable[[Any], T]) -> T:
    """Decode a 2xx JSON body; a garbled one is a transient error (a proxy's HTML page...)."""
    try:
        return decode(response.json())
    except ValueError as exc:
        raise SpeechTransientError(
            f"unexpected response body: {exc}",
            status=response.status_code,
            operation=operation,
        ) from None


def _page(data: Any) -> tuple[list[Any], str | None]:
    """`values` and `@nextLink` of a list page."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object for a list page, got {type(data).__name__}")
    values = data.get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise ValueError("list page 'values' is not a JSON array")
    link = data.get("@nextLink")
    return values, link if isinstance(link, str) and link else None


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
