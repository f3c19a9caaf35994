"""Content URLs: a read-only SAS per recording, or (identity) the plain URL and no SAS ever."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.services import DEV_ACCOUNT, DEV_ACCOUNT_KEY
from shared import storage
from shared.content_urls import IdentityContentUrls, SasContentUrls, content_urls_for
from shared.settings import Settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BLOB = f"http://127.0.0.1:1/{DEV_ACCOUNT}"
KEYED = f"AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={BLOB};"
# A connection string holding a SAS: the SDK appends it to every client URL.
WITH_SAS = f"BlobEndpoint={BLOB};SharedAccessSignature=sv=2024-01-01&sig=SECRETSIG"


def settings(**extra: str) -> Settings:
    return Settings.from_env(
        {"SPEECH_ENDPOINT": "http://127.0.0.1:1", "AzureWebJobsStorage": KEYED, **extra}
    )


def test_sas_mode_signs_a_read_only_url_for_the_validity_setting() -> None:
    urls = content_urls_for(
        settings(SAS_VALIDITY_HOURS="3"), BlobServiceClient.from_connection_string(KEYED)
    )
    assert isinstance(urls, SasContentUrls)
    assert urls.mode == "sas"
    query = parse_qs(urlsplit(urls.url_for("audio-input", "a.wav", now=NOW)).query)
    assert query["sp"] == ["r"]
    assert query["se"] == ["2026-03-01T15:00:00Z"]  # now + SAS_VALIDITY_HOURS


@pytest.mark.parametrize("connection", [KEYED, WITH_SAS])
def test_identity_mode_hands_over_the_plain_url(connection: str) -> None:
    urls = content_urls_for(
        settings(SPEECH_STORAGE_ACCESS="identity"),
        BlobServiceClient.from_connection_string(connection),
    )
    assert isinstance(urls, IdentityContentUrls)
    assert urls.mode == "identity"
    url = urls.url_for("audio-input", "calls/a b #1 ü?.wav", now=NOW)
    assert url == f"{BLOB}/audio-input/calls/a%20b%20%231%20%C3%BC%3F.wav"
    assert urlsplit(url).query == ""


def test_identity_mode_never_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SAS of any kind: neither an account-key SAS nor a user-delegation key request."""
    calls: list[str] = []

    def tripwire(name: str) -> Any:
        def called(*_args: Any, **_kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called in identity mode")

        return called

    monkeypatch.setattr(storage, "generate_blob_sas", tripwire("generate_blob_sas"))
    monkeypatch.setattr(
        BlobServiceClient, "get_user_delegation_key", tripwire("get_user_delegation_key")
    )
    service = BlobServiceClient.from_connection_string(KEYED)
    urls = content_urls_for(settings(SPEECH_STORAGE_ACCESS="identity"), service)
    assert not hasattr(urls, "signer")
    urls.url_for("audio-input", "a.wav", now=NOW)
    # the same tripwires do fire in SAS mode: they guard the real signing calls
    with pytest.raises(AssertionError, match="generate_blob_sas"):
        content_urls_for(settings(), service).url_for("audio-input", "a.wav", now=NOW)
    assert calls == ["generate_blob_sas"]
