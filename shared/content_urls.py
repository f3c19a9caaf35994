"""How the Speech service gets at a recording: the URL the app puts into ``contentUrls``.

One decision, made here, from SPEECH_STORAGE_ACCESS:

``sas`` (default)
    A read-only SAS for that one blob, valid SAS_VALIDITY_HOURS (`shared.storage.SasSigner`:
    account-key SAS with a key, user-delegation SAS with an identity). Works when the storage
    account accepts SAS requests from the Speech service's network.
``identity``
    The blob's plain URL, no query string. The Speech resource reads it with its own
    system-assigned managed identity as a trusted Azure service (Storage Blob Data Reader,
    plus a resource-instance rule when the account's network is locked down). No SAS of any
    kind is created, not even a user-delegation one: a locked-down account may refuse them
    all, and an identity-only set-up must not need the right to sign them.

Every path that submits (blob trigger, poller, sweep, re-drive) asks `Runtime.content_urls`
for its URLs, so a batch submission with many recordings per job uses the same provider.
The app never sets ``destinationContainerUrl``: the service documents it as SAS-only (no
trusted-services access) and needing a storage account open to all networks; results in
the customer's own storage come from bring-your-own-storage instead (`shared.results_reader`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from shared.errors import redact_url
from shared.storage import SasSigner

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

    from shared.settings import Settings

__all__ = [
    "ContentUrls",
    "IdentityContentUrls",
    "SasContentUrls",
    "content_urls_for",
]


class ContentUrls(Protocol):
    """What the app hands the Speech service for one recording."""

    @property
    def mode(self) -> str:
        """The SPEECH_STORAGE_ACCESS value this provider implements (``sas``/``identity``)."""
        ...

    def url_for(self, container: str, name: str, *, now: datetime) -> str:
        """The content URL of blob `container`/`name` for a submission made at `now`."""
        ...


class SasContentUrls:
    """Read-only one-blob SAS URLs, valid `validity` from the submission (SAS mode).

    The URLs are secrets: they go to the Speech service and nowhere else (never logged or
    stored).
    """

    mode = "sas"

    def __init__(self, signer: SasSigner, validity: timedelta) -> None:
        self.signer = signer
        self.validity = validity

    def url_for(self, container: str, name: str, *, now: datetime) -> str:
        """The blob's URL with a read-only SAS valid until `now` + validity."""
        return self.signer.read_url(container, name, now=now, validity=self.validity)


class IdentityContentUrls:
    """Plain blob URLs that the Speech resource reads with its managed identity."""

    mode = "identity"

    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service

    def url_for(self, container: str, name: str, *, now: datetime) -> str:
        """The blob's URL without any query string (`now` is not needed: nothing expires).

        The SDK quotes the name (spaces, ``#``, ``?``, Unicode); the query is cut because a
        connection string with a SharedAccessSignature puts that SAS on every client URL.
        """
        return redact_url(self._service.get_blob_client(container, name).url)


def content_urls_for(settings: Settings, service: BlobServiceClient) -> ContentUrls:
    """The provider SPEECH_STORAGE_ACCESS asks for, over the app's blob service."""
    if settings.speech_storage_access == "identity":
        return IdentityContentUrls(service)
    return SasContentUrls(SasSigner(service), timedelta(hours=settings.sas_validity_hours))
