"""Reading a finished transcription's result (or report) file, given its ``contentUrl``.

Two kinds of URL come back from ``GET /transcriptions/{id}/files``:

- **With a SAS** (a query string): the service's own storage, or a customer account it
  signs for. Read with one anonymous GET, as the service intends (`SpeechClient.download`).
- **Without a SAS**: bring-your-own-storage (BYOS). The Speech resource writes results into
  the customer's storage account with its own identity, and "for speech resources with BYOS
  ... returned urls do not contain an SAS token" (2024-11-15, ``sasLifetimeMinutes``). An
  anonymous GET would only earn a 403. They are read through the Storage SDK with the
  credential of the connection SPEECH_RESULTS_CONNECTION names (any form the app accepts
  for a connection: a connection string, or ``<NAME>__blobServiceUri`` with an identity).

What a failure means, and so what the caller does with it:

- No SPEECH_RESULTS_CONNECTION, or it connects to another account than the URL's:
  `ResultsNotReadableError` naming the setting. Only an operator can fix it: the job is
  reported at once.
- 401/403 from the results account, or no token for its credential:
  `ResultsAccessDeniedError`. Also configuration (the app's identity lacks Storage Blob
  Data Reader there, or the account's network refuses the app), but it is also what every
  completion sees in the minutes after a deployment, while role assignments propagate. The
  caller retries it for a while before reporting it.
- 404: `SpeechNotFoundError`, exactly as for an expired SAS download's missing file. The
  file was listed moments ago, so it is gone for good (its transcription expired, which
  deletes BYOS results too, or a lifecycle rule removed it): retrying the read cannot help,
  a new transcription can.
- 429/5xx or an unreachable account: `StorageTransientError`, like any Storage call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from shared.errors import (
    ResultsAccessDeniedError,
    ResultsNotReadableError,
    SpeechNotFoundError,
    redact_url,
)
from shared.storage import storage_errors

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

__all__ = ["RESULTS_SETTING", "ResultsReader", "has_sas"]

RESULTS_SETTING: Final = "SPEECH_RESULTS_CONNECTION"
_DENIED_STATUSES: Final = frozenset({401, 403})


def has_sas(content_url: str) -> bool:
    """True when `content_url` carries a query string (a SAS): it is read anonymously."""
    return bool(urlsplit(content_url).query)


class ResultsReader:
    """Reads result files by URL: anonymously with a SAS, else with the results connection.

    `download` is the anonymous GET (`SpeechClient.download`). `account` is the blob service
    of the connection named `connection` (SPEECH_RESULTS_CONNECTION), or None when that
    setting is empty.
    """

    def __init__(
        self,
        download: Callable[[str], bytes],
        account: BlobServiceClient | None,
        *,
        connection: str = "",
    ) -> None:
        self._download = download
        self._account = account
        self._connection = connection

    def read(self, content_url: str) -> bytes:
        """The file's bytes; see the module docstring for what each failure means."""
        if has_sas(content_url):
            return self._download(content_url)
        return self._read_from_account(content_url)

    def _read_from_account(self, content_url: str) -> bytes:
        account = self._account
        shown = redact_url(content_url)
        if account is None:
            raise ResultsNotReadableError(
                RESULTS_SETTING,
                f"the result file {shown} has no SAS: the Speech resource keeps its results in "
                f"a storage account of its own (bring-your-own-storage), and {RESULTS_SETTING} "
                "is not set. Set it to the name of a connection to that account (e.g. "
                "SpeechResultsStorage, with SpeechResultsStorage__blobServiceUri) whose "
                "identity has Storage Blob Data Reader there",
            )
        container, blob = self._locate(account, content_url)
        client = account.get_blob_client(container, blob)
        try:
            with storage_errors("read result file"):
                return bytes(client.download_blob().readall())
        except HttpResponseError as exc:
            status = exc.status_code
            code = getattr(exc, "error_code", None)  # set by the Storage SDK (an enum)
            error_code = str(getattr(code, "value", code) or "")
            if status == 404:
                raise SpeechNotFoundError(
                    f"the result file {shown} no longer exists in the results account",
                    status=404,
                    code=error_code or None,
                    operation="download",
                ) from None
            what = f"HTTP {status} {error_code}".strip() if status else "no token"
            if status in _DENIED_STATUSES or (
                status is None and isinstance(exc, ClientAuthenticationError)
            ):
                raise ResultsAccessDeniedError(
                    RESULTS_SETTING,
                    f"the results account {_account_url(account)} refused the credential of "
                    f"{RESULTS_SETTING}={self._connection} ({what}) reading {shown}. Give that "
                    "connection's identity Storage Blob Data Reader on the account and let the "
                    "app reach it (network rules, private endpoint); role assignments take "
                    "up to 10 minutes to apply",
                ) from None
            raise ResultsNotReadableError(
                RESULTS_SETTING,
                f"the results account {_account_url(account)} refused to read {shown} ({what})",
            ) from None

    def _locate(self, account: BlobServiceClient, content_url: str) -> tuple[str, str]:
        """(container, blob name) of `content_url` within `account`; refuses other accounts."""
        url, base = urlsplit(content_url), urlsplit(account.url)
        prefix = base.path.rstrip("/") + "/"  # "/" on Azure; "/devstoreaccount1/" on Azurite
        same_account = (
            url.scheme.lower() == base.scheme.lower()
            and url.netloc.lower() == base.netloc.lower()
            and url.path.startswith(prefix)
        )
        container, _, blob = (
            url.path[len(prefix) :].partition("/") if same_account else ("", "", "")
        )
        if not (container and blob):
            raise ResultsNotReadableError(
                RESULTS_SETTING,
                f"the result file {redact_url(content_url)} is not in the account that "
                f"{RESULTS_SETTING}={self._connection} connects to ({_account_url(account)}). "
                "Point the connection at the storage account the Speech resource keeps its "
                "results in (its bring-your-own-storage account)",
            )
        return unquote(container), unquote(blob)


def _account_url(account: BlobServiceClient) -> str:
    """The account's endpoint as shown in messages (without any SAS of its connection)."""
    return redact_url(account.url).rstrip("/")
