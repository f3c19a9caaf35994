"""Storage helpers against real Azurite: read-only one-blob SAS, resources, ranged reads."""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.exceptions import ResourceModifiedError

from devhost.services import Azurite
from shared.errors import ConfigurationError
from shared.settings import Settings
from shared.storage import SasSigner, StorageClients, ensure_resources, range_reader


@pytest.fixture
def clients(azurite: Azurite) -> StorageClients:
    return StorageClients.from_setting(
        {"AzureWebJobsStorage": azurite.connection_string}, "AzureWebJobsStorage"
    )


@pytest.fixture
def container(clients: StorageClients) -> str:
    name = f"st-{uuid.uuid4().hex[:12]}"
    clients.blob.create_container(name)
    return name


@pytest.mark.integration
def test_sas_reads_one_blob_and_nothing_else(clients: StorageClients, container: str) -> None:
    name = "calls/a b #1 ü?.wav"
    clients.blob_client(container, name).upload_blob(b"RIFF....WAVE")
    clients.blob_client(container, "other.wav").upload_blob(b"other")
    now = datetime.now(UTC)
    url = SasSigner(clients.blob).read_url(container, name, now=now, validity=timedelta(hours=2))
    query = parse_qs(urlsplit(url).query)
    assert query["sp"] == ["r"]  # read only
    assert query["sr"] == ["b"]  # one blob
    expiry = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert abs(expiry - (now + timedelta(hours=2))) < timedelta(seconds=2)

    assert httpx.get(url).content == b"RIFF....WAVE"
    assert httpx.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"}).status_code == 403
    assert httpx.delete(url).status_code == 403
    other = url.replace("calls/a%20b%20%231%20%C3%BC%3F.wav", "other.wav")
    assert other != url
    assert httpx.get(other).status_code == 403


@pytest.mark.integration
def test_expired_sas_is_refused(clients: StorageClients, container: str) -> None:
    clients.blob_client(container, "x.wav").upload_blob(b"data")
    past = datetime.now(UTC) - timedelta(hours=3)
    url = SasSigner(clients.blob).read_url(
        container, "x.wav", now=past, validity=timedelta(hours=1)
    )
    assert httpx.get(url).status_code == 403


@pytest.mark.integration
def test_ensure_resources_creates_everything_once(
    azurite: Azurite, clients: StorageClients
) -> None:
    uid = uuid.uuid4().hex[:8]
    settings = Settings.from_env(
        {
            "SPEECH_ENDPOINT": "http://127.0.0.1:1",
            "AzureWebJobsStorage": azurite.connection_string,
            "INPUT_CONTAINER": f"in-{uid}",
            "OUTPUT_CONTAINER": f"out-{uid}",
            "ERROR_CONTAINER": f"err-{uid}",
            "JOBS_TABLE": f"jobs{uid}",
            "COMPLETION_QUEUE": f"q-{uid}",
        }
    )
    clients.blob.create_container(f"in-{uid}")  # an existing one is fine
    ensure_resources(clients, settings)
    containers = {c.name for c in clients.blob.list_containers()}
    assert {f"in-{uid}", f"out-{uid}", f"err-{uid}"} <= containers
    assert f"jobs{uid}" in {t.name for t in clients.table.list_tables()}
    queues = {q.name for q in clients.queue.list_queues()}
    assert {f"q-{uid}", f"q-{uid}-poison"} <= queues
    clients.blob.delete_container(f"out-{uid}")
    ensure_resources(clients, settings)  # cached: no second round of requests
    assert f"out-{uid}" not in {c.name for c in clients.blob.list_containers()}


@pytest.mark.integration
def test_range_reader_reads_ranges_of_one_version(clients: StorageClients, container: str) -> None:
    blob = clients.blob_client(container, "r.wav")
    blob.upload_blob(bytes(range(256)) * 4)
    read = range_reader(blob, str(blob.get_blob_properties().etag))
    assert read(0, 4) == bytes([0, 1, 2, 3])
    assert read(300, 3) == bytes([44, 45, 46])
    assert read(10, 0) == b""
    blob.upload_blob(b"new version", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        read(0, 4)


def test_identity_based_connection_needs_service_uris() -> None:
    with pytest.raises(ConfigurationError) as info:
        StorageClients.from_setting({"Conn__credential": "managedidentity"}, "Conn")
    assert info.value.setting == "Conn"  # no endpoint at all: the connection is missing
    with pytest.raises(ConfigurationError) as info:
        StorageClients.from_setting(
            {"Conn__blobServiceUri": "https://acct.blob.core.windows.net"}, "Conn"
        )
    assert info.value.setting == "Conn__queueServiceUri"
    with pytest.raises(ConfigurationError) as info:
        StorageClients.from_setting({"Conn__accountName": "acct"}, "Conn")
    assert info.value.setting == "Conn__accountName"  # AzureWebJobsStorage only
    env = {"AzureWebJobsStorage__accountName": "acct"}
    clients = StorageClients.from_setting(env, "AzureWebJobsStorage")
    assert clients.blob.url.startswith("https://acct.blob.core.windows.net")
    assert clients.queue.url.startswith("https://acct.queue.core.windows.net")
    assert clients.table.url.startswith("https://acct.table.core.windows.net")


@pytest.mark.integration
def test_side_by_side_calls_keep_their_connections(
    clients: StorageClients, container: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A batch completion writes ~128 blobs at once through one client. With requests' default
    # pool of 10, each call past the tenth closed its connection when done (and the next
    # opened a new one: a TLS handshake against Azure Storage).
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    start = threading.Barrier(48)

    def write(index: int) -> None:
        start.wait(timeout=30)
        clients.blob_client(container, f"side-by-side/{index}.json").upload_blob(b"{}")

    with ThreadPoolExecutor(max_workers=48) as pool:
        list(pool.map(write, range(48)))
    names = list(clients.blob.get_container_client(container).list_blob_names())
    assert len([n for n in names if n.startswith("side-by-side/")]) == 48
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
