"""Synchronous client for Azure AI Speech batch transcription (REST, api-version 2024-11-15).

`SpeechClient` is the public face: the operations the app performs (submit, get, list,
find by display name, list files, download, delete) and, as `client.webhooks`, the web hook
operations (`shared.speech_webhooks`). Each operation only says which request to make and
what its answer means; everything a request goes through on the way (rate limiter,
credentials, httpx, error mapping, retries, log redaction) is the one seam underneath,
`shared.speech_transport.SpeechTransport`, much as httpx's `Client` sits on a transport.

Every failure leaves as one of the typed errors of `shared/errors.py` (the mapping table is
in `shared.speech_errors`); transient ones are retried per `shared.retry.RetryPolicy`, and a
`Retry-After` longer than `max_retry_wait` is not slept on: the error is raised at once so
the caller defers the job. Secrets never appear in messages or logs.

Submitting is the one operation that is not simply retried, because POST is not
idempotent: see `submit`. Downloading a result file is the one call that is not the Speech
API at all (`SpeechTransport.fetch`: a SAS URL, no credential, no quota); results kept in
the app's own storage without SAS would be read there instead, behind the same `download`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

import httpx

from shared.errors import (
    SpeechNotFoundError,
    SpeechThrottledError,
    SpeechTransientError,
    redact_url,
)
from shared.rate_limit import CallPurpose, Limiter, RateLimit, shared_limiter
from shared.retry import RetryPolicy, parse_retry_after
from shared.speech_auth import COGNITIVE_SERVICES_SCOPE, auth_for, default_credential
from shared.speech_errors import decode_json, proves_not_processed
from shared.speech_models import Transcription, TranscriptionFile
from shared.speech_transport import (
    SpeechRequest,
    SpeechTransport,
    normalize_endpoint,
    parse_list_page,
)
from shared.speech_webhooks import SpeechWebhooks

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.secret import Secret
    from shared.settings import Settings

__all__ = [
    "COGNITIVE_SERVICES_SCOPE",
    "SpeechClient",
    "description_filter",
    "display_name_filter",
    "equals_filter",
]

logger = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TRANSCRIPTIONS: Final = "/speechtotext/transcriptions"


class SpeechClient:
    """Speech batch transcription over REST; thread-safe, one connection pool per instance.

    Authenticate with `key` (``Ocp-Apim-Subscription-Key``) or, when no key is given, with a
    Microsoft Entra token from `credential` (scope `COGNITIVE_SERVICES_SCOPE`), cached until
    five minutes before it expires. `transport` is the httpx transport underneath (tests pass
    `httpx.MockTransport`). Calls share `limiter`, or the process-wide limiter of this
    endpoint at `rate_limit`, or none. `request_count` counts calls made to the Speech API
    (every try, retries included; result downloads excluded: they do not use the quota).
    """

    def __init__(
        self,
        endpoint: str,
        api_version: str = "2024-11-15",
        *,
        key: Secret | str | None = None,
        credential: TokenCredential | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
        rate_limit: RateLimit | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        base_url = normalize_endpoint(endpoint)
        if limiter is None and rate_limit is not None:
            # One limiter per endpoint and process: the quota is the resource's, not ours.
            limiter = shared_limiter(base_url, rate_limit)
        self._transport = SpeechTransport(
            base_url,
            api_version,
            auth_for(key, credential),
            policy=RetryPolicy(attempts=max_attempts, max_retry_wait=max_retry_wait),
            timeout=timeout,
            max_connections=max_connections,
            limiter=limiter,
            http_transport=transport,
        )
        self.webhooks = SpeechWebhooks(self._transport)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        limiter: Limiter | None = None,
    ) -> SpeechClient:
        """A client for the app's settings: the key when set, else a Microsoft Entra token
        (`default_credential`: AZURE_CLIENT_ID, else the storage connection's identity, read
        from `env`, default the process environment). Calls share `limiter` when given (the
        app-wide one, `shared.app_rate_limit`), else this process's limiter at
        SPEECH_RATE_LIMIT."""
        credential = (
            None if settings.speech_key else default_credential(env, settings.storage_connection)
        )
        return cls(
            settings.speech_endpoint,
            settings.speech_api_version,
            key=settings.speech_key,
            credential=credential,
            timeout=settings.speech_timeout_seconds,
            max_attempts=settings.speech_max_attempts,
            max_connections=max(16, settings.speech_max_concurrency),
            rate_limit=settings.speech_rate_limit,
            limiter=limiter,
            transport=transport,
        )

    @property
    def transport(self) -> SpeechTransport:
        """The request seam underneath (for operations this class does not wrap yet)."""
        return self._transport

    @property
    def request_count(self) -> int:
        """Requests sent to the Speech API so far (every try; downloads excluded)."""
        return self._transport.request_count

    def __repr__(self) -> str:
        t = self._transport
        return f"SpeechClient({t.base_url!r}, {t.api_version!r}, auth={t.auth.kind})"

    # ----------------------------------------------------------------- operations

    def submit(self, body: Mapping[str, Any]) -> Transcription:
        """Create a transcription (``POST /transcriptions:submit``, 201).

        Retry choice: a failure that proves nothing was created (connection refused, 429,
        503, the client's own limiter) is simply retried. A failure after the request may
        have reached the service (read timeout, connection reset, 500/502/504, garbled 201)
        could mean the job exists: before posting again, the client looks the job up by
        ``displayName`` and returns it when found, so a retry does not create a duplicate.
        This relies on ``displayName`` being unique per recording (the pipeline uses the
        job key).

        When it finally gives up: `SpeechThrottledError` means no attempt of this call can
        have created a job (defer and post again); any other `SpeechTransientError` means
        one may exist (look it up by ``displayName`` before posting again, as the pipeline's
        orphan search does; that also covers a crash in the middle of this call).
        """
        return _Submission(self._transport, body).run()

    def get(self, transcription_id: str) -> tuple[Transcription, float | None]:
        """A transcription and the `Retry-After` seconds the service asked for (None if not)."""
        request = SpeechRequest("get", "GET", self._transcription_url(transcription_id))

        def decode(response: httpx.Response) -> tuple[Transcription, float | None]:
            transcription = decode_json("get", response, Transcription.from_json)
            return transcription, parse_retry_after(response.headers.get("Retry-After"))

        return self._transport.call(request, decode)

    def iter_transcriptions(
        self, *, page_size: int = 100, filter: str | None = None
    ) -> Iterator[Transcription]:
        """All transcriptions (optionally OData-filtered), `page_size` per request.

        Follows ``@nextLink``; each page is retried on its own. Entries the client cannot
        decode are skipped with a warning rather than failing the whole listing.
        """
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be 1..100, got {page_size}")
        params: dict[str, Any] = {"top": page_size}
        if filter:
            params["filter"] = filter
        url = self._transport.url(_TRANSCRIPTIONS)
        request = SpeechRequest("list", "GET", url, CallPurpose.STATUS, params=params)
        yield from self._transport.paged(request, Transcription.from_json)

    def find_by_display_name(self, display_name: str) -> list[Transcription]:
        """Transcriptions whose ``displayName`` equals `display_name` exactly (oldest first)."""
        found = [
            t
            for t in self.iter_transcriptions(filter=display_name_filter(display_name))
            if t.display_name == display_name
        ]
        return sorted(found, key=lambda t: t.created or _EPOCH)

    def transcription_locales(self) -> dict[str, list[str]]:
        """``GET /transcriptions/locales``: the locales each way of transcribing supports
        (``{"Submit": [...], "Transcribe": [...]}``; batch transcription is ``Submit``)."""
        url = self._transport.url(f"{_TRANSCRIPTIONS}/locales")
        request = SpeechRequest("locales", "GET", url)
        return self._transport.call(request, lambda r: decode_json("locales", r, _locales))

    def get_model(self, model_url: str) -> dict[str, Any]:
        """The model entity behind `model_url` (a custom or base model's ``self`` URL).

        Raises ValueError, before sending anything, when the URL is not a model of this
        client's Speech resource (the credentials must not go to another host), and
        `SpeechNotFoundError` when the resource has no such model.
        """
        parts = urlsplit(model_url)
        base = urlsplit(self._transport.base_url)
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise ValueError(
                f"the model {redact_url(model_url)} belongs to another Speech resource than "
                f"{self._transport.base_url}"
            )
        if not parts.path.startswith("/speechtotext/models/"):
            raise ValueError(f"not a model URL: {redact_url(model_url)}")
        request = SpeechRequest("get model", "GET", self._transport.url(parts.path))
        return self._transport.call(request, lambda r: decode_json("get model", r, _object))

    def list_files(
        self,
        transcription_id: str,
        *,
        sas_lifetime_minutes: int | None = None,
        kind: str | None = None,
    ) -> list[TranscriptionFile]:
        """All files of a finished job (every page), with fresh SAS `content_url`s.

        `kind` (``Transcription``, ``TranscriptionReport``) asks the service for that kind
        only: a job of 100 recordings has 101 files, two pages of 100, but 100 results.
        """
        params: dict[str, Any] = {}
        if sas_lifetime_minutes is not None:
            params["sasLifetimeMinutes"] = sas_lifetime_minutes
        if kind is not None:
            if not kind.isalpha():
                raise ValueError(f"not a file kind: {kind!r}")
            params["filter"] = f"kind eq '{kind}'"
        url = f"{self._transcription_url(transcription_id)}/files"
        request = SpeechRequest("list_files", "GET", url, CallPurpose.COMPLETION, params=params)
        return list(self._transport.paged(request, TranscriptionFile.from_json))

    def download(self, content_url: str) -> bytes:
        """The bytes behind a file's SAS `contentUrl`, sent without any credential.

        Not counted in `request_count`. 403 (an expired SAS) maps to SpeechAuthError and 404
        to SpeechNotFoundError: list the files again for fresh URLs.
        """
        return self._transport.fetch("download", content_url)

    def delete(self, transcription_id: str) -> None:
        """Delete a transcription and its results; a job that is already gone is fine."""
        url = self._transcription_url(transcription_id)
        request = SpeechRequest("delete", "DELETE", url, CallPurpose.COMPLETION)
        try:
            self._transport.call(request, lambda _response: None)
        except SpeechNotFoundError:
            logger.debug("speech delete: %s was already gone", transcription_id)

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def __enter__(self) -> SpeechClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _transcription_url(self, transcription_id: str) -> str:
        if not transcription_id or "/" in transcription_id or "?" in transcription_id:
            raise ValueError(f"not a transcription id: {transcription_id!r}")
        return self._transport.url(f"{_TRANSCRIPTIONS}/{quote(transcription_id, safe='')}")


class _Submission:
    """One `SpeechClient.submit` call across its tries.

    It remembers one fact between tries, `maybe_created`: whether a failed try may have
    created the job. Each try then reads straight: look the job up if it may exist, else
    (or when it is not found) post.
    """

    def __init__(self, transport: SpeechTransport, body: Mapping[str, Any]) -> None:
        self._transport = transport
        self._body = dict(body)
        name = body.get("displayName")
        self._display_name = name if isinstance(name, str) and name else None
        self.maybe_created = False

    def run(self) -> Transcription:
        """Try per the retry policy; the job, found or created."""
        try:
            return self._transport.retrying(self._try_once)
        except SpeechThrottledError as exc:
            if not self.maybe_created:
                raise
            # Throttled now, but an earlier try may have created the job: say so by type.
            raise SpeechTransientError(
                f"{exc.message} (an earlier attempt may have created the job)",
                status=exc.status,
                code=exc.code,
                inner_code=exc.inner_code,
                retry_after=exc.retry_after,
                operation="submit",
            ) from None

    def _try_once(self) -> Transcription:
        existing = self._find_existing() if self.maybe_created else None
        if existing is not None:
            logger.info(
                "speech submit: found job %s by displayName after an ambiguous failure; "
                "not submitting again",
                existing.id,
            )
            return existing
        try:
            return self._post()
        except SpeechTransientError as exc:
            self.maybe_created = self.maybe_created or not proves_not_processed(exc)
            raise

    def _post(self) -> Transcription:
        url = self._transport.url(f"{_TRANSCRIPTIONS}:submit")
        request = SpeechRequest("submit", "POST", url, CallPurpose.SUBMISSION, json=self._body)
        return decode_json("submit", self._transport.send(request), Transcription.from_json)

    def _find_existing(self) -> Transcription | None:
        """The job by displayName from the first page of a lookup (one request, no retries of
        its own: it runs inside a try of `run`)."""
        if self._display_name is None:
            return None
        request = SpeechRequest(
            "submit",
            "GET",
            self._transport.url(_TRANSCRIPTIONS),
            CallPurpose.SUBMISSION,  # part of the submission: it draws on the same share
            params={"filter": display_name_filter(self._display_name), "top": 100},
        )
        values, _ = decode_json("submit", self._transport.send(request), parse_list_page)
        for item in values:
            try:
                transcription = Transcription.from_json(item)
            except ValueError:
                continue
            if transcription.display_name == self._display_name:
                return transcription
        return None


def _locales(data: Any) -> dict[str, list[str]]:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object of locale lists, got JSON {type(data).__name__}")
    return {
        str(kind): [str(locale) for locale in values]
        for kind, values in data.items()
        if isinstance(values, list)
    }


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got JSON {type(data).__name__}")
    return dict(data)


def display_name_filter(display_name: str) -> str:
    """The OData filter ``displayName eq '...'`` (single quotes escaped by doubling them)."""
    return equals_filter("displayName", display_name)


def description_filter(description: str) -> str:
    """The OData filter ``description eq '...'``: the transcriptions of one deployment."""
    return equals_filter("description", description)


def equals_filter(prop: str, value: str) -> str:
    """``<prop> eq '<value>'``, the value quoted as OData wants (single quotes doubled)."""
    return "{} eq '{}'".format(prop, value.replace("'", "''"))
