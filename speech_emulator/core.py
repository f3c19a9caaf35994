"""The emulator's parts wired together: one `Emulator` per process (or per test app)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from speech_emulator.access import StorageAccess
from speech_emulator.blob_account import BlobAccount
from speech_emulator.clock import Clock
from speech_emulator.config import STORAGE_ACCESS_MODES, BehaviourBox, Settings
from speech_emulator.engines.base import Engine
from speech_emulator.engines.registry import create_engine
from speech_emulator.entities import transcription_entity
from speech_emulator.faults import Dice, RateLimiter
from speech_emulator.jobs import Job
from speech_emulator.links import Links
from speech_emulator.outputs import Outputs
from speech_emulator.runner import JobRunner
from speech_emulator.speech_models import ModelCatalog
from speech_emulator.stats import Stats
from speech_emulator.store import Store, WebHook
from speech_emulator.tokens import ContentSigner
from speech_emulator.webhooks import Notifier

log = logging.getLogger(__name__)


class Emulator:
    """State and services shared by the HTTP handlers."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.behaviour = BehaviourBox(settings.behaviour)
        self.stats = Stats()
        self.store = Store(self.clock, on_expire=self._expired)
        self.catalog = ModelCatalog(settings.custom_models, self.clock.now())
        self.signer = ContentSigner()
        self.limiter = RateLimiter()
        self.dice = Dice(settings.seed)
        self.notifier = Notifier(self.store, self.stats, self.clock)
        self.engine = engine or create_engine(settings.engine, self.catalog.by_id())
        # Inputs, container listings and destination writes (SAS URLs: no credential).
        self.http = httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0))
        self.access, self.outputs = self._storage(settings)
        self.runner = JobRunner(
            store=self.store,
            stats=self.stats,
            clock=self.clock,
            behaviour=self.behaviour,
            engine=self.engine,
            custom_models=self.catalog.by_id(),
            workers=settings.workers,
            on_event=self.job_event,
            access=self.access,
            outputs=self.outputs,
            dice=self.dice,
        )
        # Base of self/contentUrl links; set once the server knows its port.
        self.public_url = settings.public_url.rstrip("/") if settings.public_url else None

    def _storage(self, settings: Settings) -> tuple[StorageAccess, Outputs]:
        """Storage access and result outputs from the settings; ValueError when unusable."""
        if settings.storage_access not in STORAGE_ACCESS_MODES:
            raise ValueError(
                f"storage access {settings.storage_access!r} is not one of "
                f"{', '.join(STORAGE_ACCESS_MODES)}"
            )
        accounts: list[BlobAccount] = []
        if settings.storage_connection_string:
            accounts.append(BlobAccount(settings.storage_connection_string))
        byos = None
        if settings.byos_connection_string:
            byos = BlobAccount(settings.byos_connection_string)
            # A BYOS account trusts the resource's identity too (it writes results there).
            accounts.append(byos)
        if settings.storage_access == "identity" and not accounts:
            raise ValueError(
                "--storage-access identity needs --storage-connection-string (the account "
                "the Speech resource's managed identity may read), e.g. Azurite's"
            )
        access = StorageAccess(self.http, settings.storage_access, accounts)
        return access, Outputs(self.http, access, byos)

    def start(self) -> None:
        """Start background threads."""
        self.runner.start()

    def close(self) -> None:
        """Stop background threads."""
        self.runner.close()
        self.notifier.close()
        self.outputs.close()
        self.http.close()

    def base_url(self) -> str:
        """The public base URL of links."""
        return self.public_url or f"http://{self.settings.host}:{self.settings.port}"

    def links(self, api_version: str, base: str | None = None) -> Links:
        """A URL builder for one API version."""
        return Links(base or self.base_url(), api_version)

    def job_event(self, name: str, job: Job) -> None:
        """Forward a job event to the web hooks (payload in each hook's API version)."""

        def render(hook: WebHook) -> dict[str, Any]:
            return transcription_entity(job, self.links(hook.api_version))

        self.notifier.transcription_event(name, render)

    def _expired(self, job: Job) -> None:
        self.stats.event("expired")
        self.outputs.discard(job.files)

    def reset(self) -> None:
        """Forget all jobs, web hooks and counters; restore start-up behaviour and clock."""
        self.runner.reset()
        self.store.clear()
        self.stats.reset()
        self.limiter.reset()
        self.notifier.reset()
        self.behaviour.reset()
        self.clock.reset()
