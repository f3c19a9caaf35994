"""The process-wide objects the functions share: settings, storage clients, job store, Speech.

Built once per process and per settings (cheap after the first call), so a warm instance
reuses its connection pools. The Speech client and the resource check are created lazily:
a function that does not need them does not pay for them. How Speech reads recordings
(`content_urls`) and how the app reads results (`results`) follow the settings
SPEECH_STORAGE_ACCESS and SPEECH_RESULTS_CONNECTION.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.app_rate_limit import quota_limiter
from shared.batch_store import BatchStore
from shared.content_urls import ContentUrls, content_urls_for
from shared.job_store import JobStore
from shared.jobs import deployment_tag
from shared.ops.recorder import Recorder
from shared.results_reader import ResultsReader
from shared.speech_client import SpeechClient
from shared.speech_transport import normalize_endpoint
from shared.storage import StorageClients, blob_service_from_setting, ensure_resources

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient

    from shared.rate_limit import Limiter
    from shared.settings import Settings

__all__ = ["Runtime", "runtime_for", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Runtime:
    """Settings plus the clients built from them; `clock` is replaceable in tests.

    `results_account` is the blob service of SPEECH_RESULTS_CONNECTION (None when unset).
    """

    def __init__(
        self,
        settings: Settings,
        storage: StorageClients,
        *,
        results_account: BlobServiceClient | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock
        table = storage.table_client(settings.jobs_table)
        # The operator view's index and hourly counters follow every state change written.
        self.store = JobStore(table, observer=Recorder(table, self.speech_request_count))
        self.batches = BatchStore(table)
        # In identity mode no SAS signer exists at all: nothing can sign by mistake.
        self.content_urls: ContentUrls = content_urls_for(settings, storage.blob)
        self.results = ResultsReader(
            self._download,
            results_account,
            connection=settings.speech_results_connection,
        )
        self._speech: SpeechClient | None = None
        self._queue: QueueClient | None = None
        self._lock = threading.Lock()

    @property
    def speech(self) -> SpeechClient:
        """The Speech client (created on first use; it holds a connection pool)."""
        with self._lock:
            if self._speech is None:
                self._speech = SpeechClient.from_settings(
                    self.settings, limiter=self.speech_limiter
                )
            return self._speech

    @functools.cached_property
    def speech_limiter(self) -> Limiter | None:
        """The limiter every instance shares (SPEECH_RATE_LIMIT_SCOPE=app), its window in
        SPEECH_QUOTA_TABLE; None: the Speech client uses its process-wide one (or none)."""
        settings = self.settings
        if settings.speech_rate_limit is None or settings.speech_rate_limit_scope != "app":
            return None
        return quota_limiter(
            self.storage.table_client(settings.speech_quota_table),
            normalize_endpoint(settings.speech_endpoint),
            settings.speech_rate_limit,
        )

    def speech_request_count(self) -> int:
        """Requests this process sent to Speech so far (0 before the client exists)."""
        speech = self._speech
        return speech.request_count if speech is not None else 0

    def _download(self, content_url: str) -> bytes:
        # Looked up at each call: the Speech client is created lazily.
        return self.speech.download(content_url)

    @property
    def completion_queue(self) -> QueueClient:
        """The completion queue, base64-encoded as the Functions host expects."""
        with self._lock:
            if self._queue is None:
                self._queue = self.storage.base64_queue(self.settings.completion_queue)
            return self._queue

    @functools.cached_property
    def deployment_tag(self) -> str:
        """The description that marks this deployment's transcriptions (`jobs.deployment_tag`)."""
        blob = self.storage.blob
        account = blob.account_name or urlsplit(blob.url).netloc
        return deployment_tag(account, self.settings.input_container)

    def ensure_resources(self) -> None:
        """Create containers, table and queues if missing (once per process)."""
        ensure_resources(self.storage, self.settings)


@functools.cache
def runtime_for(settings: Settings) -> Runtime:
    """The shared runtime for `settings`, its storage from the connections they name."""
    results = settings.speech_results_connection
    return Runtime(
        settings,
        StorageClients.from_setting(os.environ, settings.storage_connection),
        results_account=blob_service_from_setting(os.environ, results) if results else None,
    )
