"""How the Speech resource reaches the storage a job names: by the URL alone, or with its
managed identity.

``sas`` (the default): every input, container and destination URL is used as given, so a
blob needs a SAS (or a public container).

``identity``: the storage accounts the resource holds a credential for stand for accounts
locked down as the docs' "trusted Azure services security mechanism" describes ("Locate
audio files for batch transcription", learn.microsoft.com/azure/ai-services/speech-service/
batch-transcription-audio-data): public network access, account-key access and SAS access
are all disabled, and the Speech resource's system-assigned identity holds Storage Blob
Data Reader. So for URLs of those accounts:

- a plain URL (no SAS or other additions, as the docs ask) is read with that identity;
- a URL carrying a SAS is refused, because the account no longer accepts SAS;
- ``destinationContainerUrl`` cannot point into them: the docs (batch-transcription-create,
  "Specify a destination container URL") say that option "uses only an ad hoc SAS URI and
  doesn't support Trusted Azure services security mechanism", and its account "must allow
  all external traffic"; they point to bring-your-own-storage instead.

URLs of other accounts (or outside Azure) are fetched as in ``sas`` mode, as the real
service would, so a plain URL into a private container the resource has no role on fails.

Which code reports an input the resource cannot read: ``InvalidRecordingsUri``, the API's
``DetailedErrorCode`` for a recordings URI it cannot use, which is also what the service
answers for a blob SAS it cannot authenticate with ("Authentication failed for recordings
URI", Azure-Samples/cognitive-services-speech-sdk#518). A container it cannot list, and a
destination it cannot write, report ``InaccessibleCustomerStorage`` (as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from speech_emulator import fetch
from speech_emulator.blob_account import BlobAccount
from speech_emulator.fetch import Download, FetchError, strip_query


class StorageAccess:
    """Reads inputs, lists containers and vets destinations for one storage-access mode."""

    def __init__(
        self, client: httpx.Client, mode: str, identity_accounts: Sequence[BlobAccount] = ()
    ) -> None:
        self._client = client
        self.mode = mode
        # Only in identity mode does the resource use (and the account demand) its identity.
        self._accounts = tuple(identity_accounts) if mode == "identity" else ()

    def _locked(self, url: str) -> BlobAccount | None:
        return next((a for a in self._accounts if a.owns(url)), None)

    def download(self, url: str) -> Download:
        """One input's bytes; raises FetchError."""
        account = self._locked(url)
        if account is None:
            return fetch.download(self._client, url)
        if urlsplit(url).query:
            raise FetchError(
                "InvalidRecordingsUri",
                f"The recording at {strip_query(url)} could not be read: HTTP 403 "
                f"(KeyBasedAuthenticationNotPermitted). Storage account {account.name} "
                "accepts only the Speech resource's managed identity (trusted Azure "
                "services), not a SAS. Send the plain blob URL, without the SAS.",
            )
        return account.download(url)

    def list_container(self, container_url: str) -> Sequence[str]:
        """Blob URLs of a ``contentContainerUrl``; raises FetchError."""
        account = self._locked(container_url)
        if account is None:
            return fetch.list_container(self._client, container_url)
        if urlsplit(container_url).query:
            raise FetchError(
                "InaccessibleCustomerStorage",
                f"The container {strip_query(container_url)} could not be listed: HTTP 403 "
                f"(KeyBasedAuthenticationNotPermitted). Storage account {account.name} "
                "accepts only the Speech resource's managed identity (trusted Azure "
                "services), not a SAS. Send the plain container URL, without the SAS.",
            )
        return account.list_container(container_url)

    def destination_refusal(self, container_url: str) -> FetchError | None:
        """Why results cannot be written to ``destinationContainerUrl``, or None."""
        account = self._locked(container_url)
        if account is None:
            return None
        return FetchError(
            "InaccessibleCustomerStorage",
            f"Results could not be written to {strip_query(container_url)}: storage account "
            f"{account.name} accepts only the Speech resource's managed identity (trusted "
            "Azure services), and destinationContainerUrl works only with an ad hoc SAS on "
            "an account that allows all external traffic. Leave destinationContainerUrl out "
            "and read the results from the API (or bring your own storage).",
        )
