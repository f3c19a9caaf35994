"""Small helpers for talking to the emulator and Azurite over real HTTP in tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from devhost.services import DEV_ACCOUNT, DEV_ACCOUNT_KEY, Azurite, wait_for

API_VERSION = "2024-11-15"


class Endpoint(Protocol):
    """Where an emulator listens: a `SpeechEmulator` or an in-process server."""

    @property
    def url(self) -> str: ...

    @property
    def key(self) -> str: ...


def client(emulator: Endpoint, key: str | None = None) -> httpx.Client:
    """An httpx client for the Speech API with the key header and api-version."""
    return httpx.Client(
        base_url=f"{emulator.url}/speechtotext",
        headers={"Ocp-Apim-Subscription-Key": key or emulator.key},
        params={"api-version": API_VERSION},
        timeout=30.0,
    )


def admin(emulator: Endpoint) -> httpx.Client:
    """An httpx client for the emulator's admin API."""
    return httpx.Client(base_url=f"{emulator.url}/_emulator", timeout=30.0)


def upload(
    azurite: Azurite,
    data: bytes,
    *,
    name: str | None = None,
    transcript: Sequence[Sequence[str]] | None = None,
    expiry: timedelta = timedelta(hours=1),
) -> str:
    """Upload a blob to a fresh container and return a read SAS URL for it."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"in-{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    blob_name = name or f"{uuid.uuid4().hex}.wav"
    metadata = {"transcript": json.dumps(transcript)} if transcript is not None else None
    service.get_blob_client(container, blob_name).upload_blob(data, metadata=metadata)
    sas = generate_blob_sas(
        DEV_ACCOUNT,
        container,
        blob_name,
        account_key=DEV_ACCOUNT_KEY,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(UTC) + expiry,
        start=datetime.now(UTC) - timedelta(minutes=5),
    )
    return f"{azurite.blob_endpoint}/{container}/{blob_name}?{sas}"


def create_body(urls: Sequence[str], **properties: Any) -> dict[str, Any]:
    """A valid create body for ``urls`` with extra ``properties``."""
    return {
        "displayName": f"test-{uuid.uuid4().hex[:8]}",
        "locale": "en-US",
        "contentUrls": list(urls),
        "properties": {"timeToLiveHours": 48, **properties},
    }


def submit(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Create a transcription; asserts 201."""
    response = api.post("/transcriptions:submit", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def job_id(entity: dict[str, Any]) -> str:
    """The id of an entity: the last path segment of its self URL."""
    return str(entity["self"].split("?")[0].rsplit("/", 1)[1])


def wait_done(api: httpx.Client, entity: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Poll a transcription until Succeeded or Failed; return the final entity."""

    def done() -> dict[str, Any] | None:
        got = api.get(f"/transcriptions/{job_id(entity)}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if body["status"] in ("Succeeded", "Failed") else None

    return wait_for(done, timeout=timeout, what="transcription to finish")


def files(api: httpx.Client, entity: dict[str, Any]) -> list[dict[str, Any]]:
    """All File entities of a transcription."""
    response = api.get(f"/transcriptions/{job_id(entity)}/files")
    assert response.status_code == 200, response.text
    values: list[dict[str, Any]] = response.json()["values"]
    return values


def download(file: dict[str, Any]) -> Any:
    """GET a file's contentUrl (no key: it carries its own token) and parse the JSON."""
    response = httpx.get(file["links"]["contentUrl"], timeout=30.0)
    assert response.status_code == 200, response.text
    return response.json()


def status(api: httpx.Client, entity: dict[str, Any]) -> str:
    """The transcription's current status."""
    got = api.get(f"/transcriptions/{job_id(entity)}")
    assert got.status_code == 200, got.text
    return str(got.json()["status"])


def file_pages(api: httpx.Client, entity: dict[str, Any], **params: Any) -> list[list[dict]]:
    """Every page of a transcription's files, following ``@nextLink``."""
    pages: list[list[dict]] = []
    response = api.get(f"/transcriptions/{job_id(entity)}/files", params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["values"])
        if body["@nextLink"] is None:
            return pages
        response = httpx.get(body["@nextLink"], headers=dict(api.headers), timeout=30.0)
