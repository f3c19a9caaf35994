"""Where a finished job's result and report files go, and what becomes of them on delete.

- By default the service keeps them itself: the emulator holds them in memory and serves
  them behind signed, expiring contentUrls (the service's own storage plus a SAS).
- ``destinationContainerUrl``: written with the client's ad hoc SAS as
  ``<container>/<job id>/<file name>``; the 2024-11-15 API says that for such transcriptions
  "returned urls do not contain an SAS token", so contentUrl is the plain blob URL. Deleting
  the job leaves them: "the data stored in the destination container ... will remain
  untouched" (API description of ``destinationContainerUrl``).
- Bring your own storage (``--byos``): written with the resource's identity to the BYOS
  account, container ``customspeech-artifacts``, as ``TranscriptionData/<job id>_<input
  index>_0.json`` (the layout the BYOS speech-to-text docs show; those docs also say not to
  rely on it, and clients should not: a result's ``source`` names its input). The report's
  name there, ``TranscriptionData/<job id>_report.json``, is this emulator's choice (not
  documented). With BYOS "returned urls do not contain an SAS token" (2024-11-15,
  ``sasLifetimeMinutes``), so only a caller with its own storage credential can read them.
  The API's ``timeToLiveHours`` note says the BYOS result files are deleted with the
  transcription; the emulator deletes them when the job is deleted or expires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from azure.core.exceptions import AzureError

from speech_emulator.access import StorageAccess
from speech_emulator.blob_account import BlobAccount
from speech_emulator.fetch import strip_query
from speech_emulator.jobs import JobFile, JobSpec

log = logging.getLogger(__name__)

BYOS_CONTAINER = "customspeech-artifacts"
INACCESSIBLE = "InaccessibleCustomerStorage"


def byos_blob_name(job_id: str, file: JobFile) -> str:
    """Where a file of a job lives in the BYOS container."""
    if file.input_index is None:
        return f"TranscriptionData/{job_id}_report.json"
    return f"TranscriptionData/{job_id}_{file.input_index}_0.json"


class Outputs:
    """Stores finished jobs' files and cleans up after deleted ones."""

    def __init__(
        self, client: httpx.Client, access: StorageAccess, byos: BlobAccount | None
    ) -> None:
        self._client = client
        self._access = access
        self._byos = byos
        # Deleting BYOS blobs is storage I/O: never on the request path.
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")

    def close(self) -> None:
        """Stop background clean-up (pending deletions are dropped)."""
        self._cleaner.shutdown(wait=False, cancel_futures=True)

    def store(self, job_id: str, spec: JobSpec, files: Sequence[JobFile]) -> tuple[str, str] | None:
        """Write ``files`` where the job's results belong; the job error, or None.

        A file written to storage gets its ``location`` and loses its ``content``.
        """
        if spec.destination_container_url:
            return self._to_destination(job_id, spec.destination_container_url, files)
        if self._byos is not None:
            return self._to_byos(job_id, self._byos, files)
        return None

    def _to_destination(
        self, job_id: str, container_url: str, files: Sequence[JobFile]
    ) -> tuple[str, str] | None:
        refusal = self._access.destination_refusal(container_url)
        if refusal is not None:
            return (refusal.code, refusal.message)
        parts = urlsplit(container_url)
        written: list[tuple[JobFile, str]] = []
        for file in files:
            path = f"{parts.path.rstrip('/')}/{job_id}/{quote(file.name)}"
            url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
            try:
                response = self._client.put(
                    url, content=file.content or b"", headers={"x-ms-blob-type": "BlockBlob"}
                )
                ok = response.status_code in (200, 201)
            except httpx.HTTPError:
                ok = False
            if not ok:
                return (
                    INACCESSIBLE,
                    f"Results could not be written to {strip_query(container_url)}; its SAS "
                    "must grant write access.",
                )
            written.append((file, strip_query(url)))
        for file, location in written:
            file.location, file.content = location, None
        return None

    def _to_byos(
        self, job_id: str, account: BlobAccount, files: Sequence[JobFile]
    ) -> tuple[str, str] | None:
        written: list[tuple[JobFile, str]] = []
        try:
            for file in files:
                name = byos_blob_name(job_id, file)
                written.append((file, account.upload(BYOS_CONTAINER, name, file.content or b"")))
        except AzureError as exc:
            log.warning("BYOS write for job %s failed: %s", job_id, exc)
            return (
                INACCESSIBLE,
                f"Results could not be written to the bring-your-own-storage account "
                f"{account.name} ({type(exc).__name__}). Check that the Speech resource's "
                "identity may write to it.",
            )
        for file, location in written:
            file.location, file.content = location, None
        return None

    def discard(self, files: Sequence[JobFile]) -> None:
        """A job was deleted or expired: delete its BYOS blobs, in the background."""
        account = self._byos
        if account is None:
            return
        # Only what BYOS holds: a destination container may be in the same account.
        ours = account.blob_url(BYOS_CONTAINER, "")
        urls = [f.location for f in files if f.location and f.location.startswith(ours)]
        if urls:
            self._cleaner.submit(self._delete, account, urls)

    @staticmethod
    def _delete(account: BlobAccount, urls: Sequence[str]) -> None:
        try:
            account.delete(urls)
        except AzureError as exc:
            log.warning("could not delete %d BYOS blobs: %s", len(urls), exc)
