"""A storage account the Speech resource reaches with its own identity, via the Azure SDK.

The real resource authenticates to such an account with its system-assigned managed
identity (trusted Azure services access, or bring-your-own-storage). The emulator stands
in for that identity with the account's connection string: the client of the emulator
never sends it a credential, only plain blob URLs.

Errors become `FetchError`s with the detailed code the job reports; this module never
decides policy (see ``access`` and ``outputs``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote, urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings

from speech_emulator.fetch import MAX_INPUT_BYTES, Download, FetchError, parse_script, strip_query

# Blob metadata key of the scripted engine's per-channel phrases (x-ms-meta-transcript).
SCRIPT_METADATA = "transcript"


def _prefix(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


class BlobAccount:
    """One storage account: recognise its URLs, read, list, write and delete blobs."""

    def __init__(self, connection_string: str) -> None:
        try:
            self._service = BlobServiceClient.from_connection_string(
                connection_string, connection_timeout=5, read_timeout=60
            )
        except ValueError as exc:
            raise ValueError(f"the storage connection string is not usable: {exc}") from exc
        if self._service.credential is None:
            raise ValueError(
                "the storage connection string has no AccountKey (or SAS): the emulator "
                "needs a credential to stand in for the Speech resource's managed identity"
            )
        self.name: str = self._service.account_name or ""
        self.url = _prefix(self._service.url)  # e.g. http://127.0.0.1:10000/devstoreaccount1
        self._containers: set[str] = set()  # created (or found) already: skip the round trip

    def owns(self, url: str) -> bool:
        """True when ``url`` names a container or blob of this account."""
        return _prefix(url).startswith(self.url + "/")

    def _path(self, url: str) -> tuple[str, str]:
        rest = unquote(urlsplit(url).path)[len(urlsplit(self.url).path) :].lstrip("/")
        container, _, blob = rest.partition("/")
        return container, blob

    def blob_url(self, container: str, blob: str) -> str:
        """The plain URL (no SAS) of a blob."""
        return f"{self.url}/{container}/{quote(blob)}"

    def download(self, url: str) -> Download:
        """Read a blob and its scripted-engine metadata; raises FetchError."""
        container, blob = self._path(url)
        source = strip_query(url)
        try:
            stream = self._service.get_blob_client(container, blob).download_blob()
            if stream.size > MAX_INPUT_BYTES:
                raise FetchError(
                    "AudioLengthLimitExceeded", f"The recording at {source} is larger than 1 GB."
                )
            data = stream.readall()
            script = parse_script((stream.properties.metadata or {}).get(SCRIPT_METADATA))
        except HttpResponseError as exc:
            raise FetchError(
                "InvalidRecordingsUri",
                f"The recording at {source} could not be read with the Speech resource's "
                f"identity: HTTP {exc.status_code} ({_code(exc)}). Check that the blob "
                "exists.",
            ) from exc
        except AzureError as exc:
            raise FetchError(
                "InvalidRecordingsUri",
                f"The recording at {source} could not be read: {type(exc).__name__}. Check "
                "that the storage account is reachable from the service.",
            ) from exc
        return Download(data=data, script=script)

    def list_container(self, container_url: str) -> Sequence[str]:
        """Plain URLs of every blob in a container; raises FetchError."""
        container, _ = self._path(container_url)
        try:
            names = [b.name for b in self._service.get_container_client(container).list_blobs()]
        except AzureError as exc:
            raise FetchError(
                "InaccessibleCustomerStorage",
                f"The container {strip_query(container_url)} could not be listed with the "
                f"Speech resource's identity: {_describe(exc)}.",
            ) from exc
        return [self.blob_url(container, name) for name in names]

    def upload(self, container: str, blob: str, data: bytes) -> str:
        """Write a JSON blob (creating the container if needed); its plain URL.

        Raises AzureError.
        """
        client = self._service.get_container_client(container)
        if container not in self._containers:
            with contextlib.suppress(ResourceExistsError):
                client.create_container()
            self._containers.add(container)
        client.upload_blob(
            blob,
            data,
            overwrite=True,
            content_settings=ContentSettings(content_type="application/json"),
        )
        return self.blob_url(container, blob)

    def delete(self, urls: Iterable[str]) -> None:
        """Delete blobs by URL, ignoring those already gone. Raises AzureError."""
        for url in urls:
            container, blob = self._path(url)
            try:
                self._service.get_blob_client(container, blob).delete_blob()
            except HttpResponseError as exc:
                if exc.status_code != 404:
                    raise


def _describe(exc: AzureError) -> str:
    if isinstance(exc, HttpResponseError):
        return f"HTTP {exc.status_code} ({_code(exc)})"
    return type(exc).__name__


def _code(exc: HttpResponseError) -> str:
    # The storage SDK sets error_code (x-ms-error-code); azure-core's type does not declare it.
    return str(getattr(exc, "error_code", None) or exc.reason or "")
