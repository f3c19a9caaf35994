"""Reading result files: anonymously with a SAS, through the results connection without one."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.services import DEV_ACCOUNT, DEV_ACCOUNT_KEY, Azurite
from shared.errors import (
    ResultsAccessDeniedError,
    ResultsNotReadableError,
    SpeechNotFoundError,
)
from shared.results_reader import ResultsReader, has_sas

SAS_URL = "https://spsvc.blob.core.windows.net/results/x.json?sv=2024&sig=abc"
PLAIN = "https://byos.blob.core.windows.net/transcriptions/j1/contenturl_0.json"


class Downloads:
    """The anonymous GET's stand-in (SpeechClient.download): records what it was asked."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return b'{"anonymous": true}'


def test_has_sas() -> None:
    assert has_sas(SAS_URL)
    assert not has_sas(PLAIN)


def test_a_sas_url_is_read_anonymously_even_with_a_results_connection() -> None:
    downloads = Downloads()
    account = BlobServiceClient("https://byos.blob.core.windows.net", credential=None)
    reader = ResultsReader(downloads, account, connection="Results")
    assert reader.read(SAS_URL) == b'{"anonymous": true}'
    assert downloads.urls == [SAS_URL]


def test_without_sas_and_without_a_connection_the_setting_is_named() -> None:
    downloads = Downloads()
    with pytest.raises(ResultsNotReadableError) as info:
        ResultsReader(downloads, None).read(PLAIN)
    assert info.value.setting == "SPEECH_RESULTS_CONNECTION"
    assert "SPEECH_RESULTS_CONNECTION is not set" in info.value.message
    assert "bring-your-own-storage" in info.value.message
    assert downloads.urls == []  # no anonymous GET that can only earn a 403
    assert not isinstance(info.value, ResultsAccessDeniedError)  # permanent: report at once


AZURITE_URL = "http://127.0.0.1:10000/devstoreaccount1/transcriptions/j1/contenturl_0.json"


@pytest.mark.parametrize(
    ("account_url", "content_url"),
    [
        ("https://other.blob.core.windows.net", PLAIN),  # another account
        ("http://byos.blob.core.windows.net", PLAIN),  # another scheme
        ("http://127.0.0.1:10000/otheraccount", AZURITE_URL),  # path-style: another account
        ("http://127.0.0.1:10001/devstoreaccount1", AZURITE_URL),  # another port
    ],
)
def test_a_url_in_another_account_is_refused_before_any_request(
    account_url: str, content_url: str
) -> None:
    reader = ResultsReader(
        Downloads(), BlobServiceClient(account_url, credential=None), connection="Results"
    )
    with pytest.raises(ResultsNotReadableError) as info:
        reader.read(content_url)
    assert "SPEECH_RESULTS_CONNECTION=Results connects to" in info.value.message
    assert "/transcriptions/j1/contenturl_0.json" in info.value.message


@pytest.fixture
def results_account(azurite: Azurite) -> tuple[BlobServiceClient, str]:
    """The Azurite account as a results (BYOS) account, with a container of its own."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"byos-{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    return service, container


@pytest.mark.integration
def test_a_plain_url_is_read_with_the_connection(
    results_account: tuple[BlobServiceClient, str],
) -> None:
    service, container = results_account
    name = "job 1/ü #contenturl_0.json"
    service.get_blob_client(container, name).upload_blob(b'{"byos": 1}')
    url = service.get_blob_client(container, name).url
    assert not has_sas(url)
    downloads = Downloads()
    reader = ResultsReader(downloads, service, connection="Results")
    assert reader.read(url) == b'{"byos": 1}'
    assert downloads.urls == []


@pytest.mark.integration
def test_a_missing_file_is_not_found(results_account: tuple[BlobServiceClient, str]) -> None:
    service, container = results_account
    url = service.get_blob_client(container, "gone.json").url
    with pytest.raises(SpeechNotFoundError) as info:
        ResultsReader(Downloads(), service, connection="Results").read(url)
    assert info.value.status == 404


@pytest.mark.integration
def test_a_refused_credential_is_access_denied(
    azurite: Azurite, results_account: tuple[BlobServiceClient, str]
) -> None:
    service, container = results_account
    service.get_blob_client(container, "r.json").upload_blob(b"{}")
    wrong_key = DEV_ACCOUNT_KEY[:-8] + "AAAAAAA="
    wrong = BlobServiceClient.from_connection_string(
        f"AccountName={DEV_ACCOUNT};AccountKey={wrong_key};BlobEndpoint={azurite.blob_endpoint};"
    )
    url = service.get_blob_client(container, "r.json").url
    with pytest.raises(ResultsAccessDeniedError) as info:
        ResultsReader(Downloads(), wrong, connection="Results").read(url)
    assert info.value.setting == "SPEECH_RESULTS_CONNECTION"
    assert "HTTP 403 AuthorizationFailure" in info.value.message
    assert "Storage Blob Data Reader" in info.value.message
    assert wrong_key not in info.value.message
