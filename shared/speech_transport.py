"""The one seam between the Speech client and the network: a request in, a 2xx answer out.

`SpeechTransport.send` takes one Speech API request through, in this order:

    rate limiter  -> wait for a slot of the call's purpose (RateLimitedError: nothing sent)
    credentials   -> the key header, or a bearer token (cached; dropped on 401)
    httpx         -> one HTTP exchange on a pooled connection, with a timeout
    error mapping -> a non-2xx answer or a transport failure becomes a typed error
                     (`shared.speech_errors`); a 429 pauses the limiter for everyone

`call` repeats `send` (and the decoding of its answer) per `shared.retry.RetryPolicy`;
`paged` follows ``@nextLink`` with each page retried on its own; `fetch` downloads a
result file's SAS URL without credentials, limiter or counting (it is Storage, not the
Speech API). The operations themselves (paths, bodies, what an answer means) live one
level up, in `SpeechClient` and `SpeechWebhooks`; this module knows no endpoint but
the base URL.

The limiter is anything with the `shared.rate_limit.Limiter` shape, the credentials
anything with the `shared.speech_auth.SpeechAuth` shape, and the HTTP layer an
`httpx.BaseTransport` (tests pass `httpx.MockTransport`): each can be replaced alone.

Nothing secret leaves: URLs are logged without their query (SAS signatures live there),
error texts are scrubbed of the key, the token and any SAS, and httpx's own request log
line gets the same treatment (`shared.log_redaction`, installed here when a transport is
built).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from shared.errors import SpeechServiceError, redact_url
from shared.log_redaction import install_log_redaction
from shared.rate_limit import CallPurpose, Limiter, RateLimitedError
from shared.retry import RetryPolicy
from shared.speech_auth import SpeechAuth
from shared.speech_errors import decode_json, error_for_response, error_for_transport_failure

__all__ = [
    "SUBMIT_MAX_WAIT_S",
    "SpeechRequest",
    "SpeechTransport",
    "normalize_endpoint",
    "parse_list_page",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A submission waits this long for a slot, then gives up so the job is deferred: a blob
# trigger should not hold its slot for long while completions take the quota.
SUBMIT_MAX_WAIT_S: Final = 10.0
# A 429 without Retry-After still pauses every caller this long.
_DEFAULT_PAUSE_S: Final = 1.0


@dataclass(frozen=True)
class SpeechRequest:
    """One Speech API request, as the operations describe it.

    `operation` names it in errors and logs ("submit", "webhook ping", ...); `purpose` is
    its share of the rate limit; `params` are merged into the URL's own query (a
    ``@nextLink`` keeps its skip/top/filter) and ``api-version`` is added when missing.
    """

    operation: str
    method: str
    url: str
    purpose: CallPurpose = CallPurpose.STATUS
    params: Mapping[str, Any] | None = None
    json: Any = None


class SpeechTransport:
    """Authenticated, rate-limited, retried requests to one Speech resource; thread-safe.

    `request_count` counts the requests sent to the Speech API (every try, retries
    included; downloads excluded: they do not use the quota).
    """

    def __init__(
        self,
        endpoint: str,
        api_version: str,
        auth: SpeechAuth,
        *,
        policy: RetryPolicy,
        timeout: float = 30.0,
        max_connections: int = 16,
        limiter: Limiter | None = None,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = normalize_endpoint(endpoint)
        self.api_version = api_version
        self.auth = auth
        self.policy = policy
        parts = urlsplit(self.base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._limiter = limiter
        self._count_lock = threading.Lock()
        self._request_count = 0
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=http_transport,
            follow_redirects=False,  # a redirect would carry the key to another host
            headers={"Accept": "application/json"},
        )
        install_log_redaction()

    @property
    def limiter(self) -> Limiter | None:
        """The rate limiter calls wait for (None: no client-side limit)."""
        return self._limiter

    @property
    def request_count(self) -> int:
        """Requests sent to the Speech API so far (every try)."""
        with self._count_lock:
            return self._request_count

    def url(self, path: str) -> str:
        """The absolute URL of `path` (``/speechtotext/...``) on this resource."""
        return f"{self.base_url}{path}"

    # ----------------------------------------------------------------- one try

    def send(self, request: SpeechRequest) -> httpx.Response:
        """One try of `request`: a 2xx response, or the mapped error (see the module doc)."""
        self._take_slot(request)
        headers = self.auth.headers(request.operation)
        url = httpx.URL(request.url)
        params = dict(request.params or {})
        if "api-version" not in url.params:
            params["api-version"] = self.api_version
        with self._count_lock:
            self._request_count += 1
        try:
            return self._exchange(
                request.operation,
                request.method,
                url.copy_merge_params(params),
                headers,
                json=request.json,
            )
        except SpeechServiceError as failure:
            self._learn_from(failure)
            raise

    def _take_slot(self, request: SpeechRequest) -> None:
        """Wait for the limiter; RateLimitedError (nothing sent) when it says no.

        Submissions wait briefly (the caller defers the job); completion and status calls
        wait up to `max_retry_wait`, as they would for a Retry-After.
        """
        if self._limiter is None:
            return
        submission = request.purpose is CallPurpose.SUBMISSION
        max_wait = SUBMIT_MAX_WAIT_S if submission else self.policy.max_retry_wait
        if self._limiter.acquire(request.purpose, max_wait=max_wait):
            return
        wait = max(self._limiter.wait_estimate(request.purpose), _DEFAULT_PAUSE_S)
        raise RateLimitedError(
            f"client-side rate limit {self._limiter} reached; not sent",
            retry_after=wait,
            operation=request.operation,
        )

    def _learn_from(self, failure: SpeechServiceError) -> None:
        """What a failure tells the limiter and the credentials."""
        if failure.status == 429 and self._limiter is not None:
            # Everyone in this process backs off together, not each thread after ~1 s.
            pause = failure.retry_after if failure.retry_after is not None else _DEFAULT_PAUSE_S
            self._limiter.pause(pause)
        if failure.status == 401:
            self.auth.unauthorized()

    def _exchange(
        self,
        operation: str,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        *,
        json: Any = None,
    ) -> httpx.Response:
        """The HTTP exchange itself and its error mapping; logs without the URL's query."""
        secrets = [*self.auth.secrets(), *(v.removeprefix("Bearer ") for v in headers.values())]
        shown = redact_url(str(url))
        started = time.perf_counter()
        try:
            response = self._http.request(method, url, json=json, headers=dict(headers))
        except httpx.TransportError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug(
                "speech %s %s failed after %.0f ms: %s",
                method,
                shown,
                elapsed_ms,
                type(exc).__name__,
            )
            # `from None`: the original exception's text could quote the SAS URL.
            raise error_for_transport_failure(operation, method, shown, exc, secrets) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "speech %s %s -> %d in %.0f ms", method, shown, response.status_code, elapsed_ms
        )
        if response.is_success:
            return response
        raise error_for_response(
            operation, response, secrets=secrets, max_retry_wait=self.policy.max_retry_wait
        )

    # ----------------------------------------------------------------- retried

    def retrying(self, once: Callable[[], T]) -> T:
        """`once()` per the retry policy: again after a transient error, within bounds."""
        return self.policy.call(once)

    def call(self, request: SpeechRequest, decode: Callable[[httpx.Response], T]) -> T:
        """Send `request` and `decode` its answer, both retried as a whole."""
        return self.retrying(lambda: decode(self.send(request)))

    def paged(
        self,
        request: SpeechRequest,
        decode: Callable[[Mapping[str, Any]], T],
    ) -> Iterator[T]:
        """Every entry of a list, following ``@nextLink``; each page is retried on its own.

        Entries `decode` rejects (ValueError) are skipped with a warning rather than
        failing the whole listing.
        """
        page: SpeechRequest | None = request
        while page is not None:
            values, link = self.call(
                page, lambda r: decode_json(request.operation, r, parse_list_page)
            )
            for index, item in enumerate(values):
                try:
                    yield decode(item)
                except ValueError as exc:
                    logger.warning(
                        "speech %s: skipping entry %d: %s", request.operation, index, exc
                    )
            page = None
            if link:
                page = SpeechRequest(
                    request.operation, "GET", self._rebase_next_link(link), request.purpose
                )

    def _rebase_next_link(self, link: str) -> str:
        """`@nextLink` pointed back at our endpoint, keeping its path/query and api-version.

        The credential is only ever sent to the configured host, whatever host the link names.
        """
        parts = urlsplit(link)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if not any(name == "api-version" for name, _ in query):
            query.append(("api-version", self.api_version))
        return urlunsplit(
            (self._scheme, self._netloc, parts.path, urlencode(query, quote_via=quote), "")
        )

    # ----------------------------------------------------------------- not the Speech API

    def fetch(self, operation: str, url: str) -> bytes:
        """The bytes behind a result file's SAS URL; retried, sent without any credential.

        Not rate-limited and not counted: result files are served by Storage, not by the
        Speech API. 403 (an expired SAS) maps to SpeechAuthError, 404 to SpeechNotFoundError.
        """
        return self.retrying(
            lambda: self._exchange(operation, "GET", httpx.URL(url), headers={}).content
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"SpeechTransport({self.base_url!r}, {self.api_version!r}, auth={self.auth.kind})"


def normalize_endpoint(endpoint: str) -> str:
    """The Speech endpoint as the transport uses it: scheme, host and path, no trailing ``/``.

    Raises ValueError for anything but an http(s) URL without a query string.
    """
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(
            "endpoint must be an http(s) URL without a query string, e.g. "
            f"https://<name>.cognitiveservices.azure.com; got {redact_url(endpoint)!r}"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def parse_list_page(data: Any) -> tuple[list[Any], str | None]:
    """`values` and `@nextLink` of a decoded list page; ValueError when it is not one."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object for a list page, got {type(data).__name__}")
    values = data.get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise ValueError("list page 'values' is not a JSON array")
    link = data.get("@nextLink")
    return values, link if isinstance(link, str) and link else None
