"""Blob trigger semantics against a real Azurite."""

import base64
import json
import logging
import os

import pytest
from azure.storage.blob import BlobClient as StorageBlobClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.blob_trigger import HOST_SCAN_INTERVAL, BlobPath, receipt_name, scan_pause
from devhost.indexing import find_function_app, index_app
from devhost.services import wait_for
from tests.devhost.conftest import load_fixture_app

pytestmark = pytest.mark.integration


@pytest.fixture
def blob_app(storage_env):
    return load_fixture_app("blob_app")


@pytest.fixture
def container(storage_env, monkeypatch):
    service = BlobServiceClient.from_connection_string(storage_env.connection_string)
    client = service.get_container_client(os.environ["DEVHOST_TEST_CONTAINER"])
    client.create_container()
    return client


def client_calls(module):
    return [c for c in module.calls if c["function"] == "client"]


def test_path_pattern_prefix_and_folders():
    path = BlobPath.parse("audio-input/calls/{name}", function="f")
    assert path.container == "audio-input"
    assert path.prefix == "calls/"
    assert path.match("calls/2026/a.wav") == {"name": "2026/a.wav"}
    assert path.match("other/a.wav") is None


def test_path_without_container_is_rejected():
    with pytest.raises(ValueError, match=r"'<container>/<name pattern>'"):
        BlobPath.parse("{name}", function="f")


def test_invoked_once_per_name_and_etag_with_sdk_blob_client(blob_app, container, make_host):
    container.upload_blob("a.wav", b"first")
    container.upload_blob("folder/b.wav", b"second")
    host = make_host(blob_app)

    outcomes = host.scan_blobs("on_blob_client")
    assert sorted(o.succeeded for o in outcomes) == [True, True]
    calls = client_calls(blob_app)
    assert sorted(c["name"] for c in calls) == ["a.wav", "folder/b.wav"]
    for call in calls:
        # Exactly the type the Python worker hands to an SDK-type binding: a sync client.
        assert type(call["arg"]) is StorageBlobClient
        assert call["arg"].container_name == container.container_name
    assert {c["data"] for c in calls} == {b"first", b"second"}

    assert host.scan_blobs("on_blob_client") == []  # same versions: nothing to do

    container.upload_blob("a.wav", b"re-uploaded", overwrite=True)  # new ETag
    again = host.scan_blobs("on_blob_client")
    assert len(again) == 1
    assert client_calls(blob_app)[-1]["data"] == b"re-uploaded"


def test_receipts_survive_a_restart(blob_app, container, make_host, storage_env):
    container.upload_blob("kept.wav", b"data")
    specs = index_app(find_function_app(blob_app))
    first = make_host(specs)
    assert len(first.scan_blobs("on_blob_client")) == 1
    first.stop()

    etag = container.get_blob_client("kept.wav").get_blob_properties().etag
    hosts = BlobServiceClient.from_connection_string(storage_env.connection_string)
    receipt = receipt_name(
        first.host_id, "on_blob_client", etag, container.container_name, "kept.wav"
    )
    assert hosts.get_blob_client("azure-webjobs-hosts", receipt).exists()

    second = make_host(specs)  # a new host process would read the same receipts
    assert second.scan_blobs("on_blob_client") == []
    assert len(client_calls(blob_app)) == 1


def test_failing_blob_is_retried_then_poisoned(blob_app, container, make_host, storage_env, caplog):
    container.upload_blob("bad.wav", b"fail please")
    host = make_host(blob_app)
    etag = container.get_blob_client("bad.wav").get_blob_properties().etag

    with caplog.at_level(logging.INFO, logger="devhost"):
        for attempt in range(1, 6):
            outcomes = host.scan_blobs("on_blob_client")
            assert [o.succeeded for o in outcomes] == [False], f"try {attempt}"
    assert host.scan_blobs("on_blob_client") == []  # poisoned: not retried forever
    assert len(client_calls(blob_app)) == 5

    queues = QueueServiceClient.from_connection_string(storage_env.connection_string)
    poison = queues.get_queue_client("webjobs-blobtrigger-poison")
    mine = []
    for message in poison.receive_messages(max_messages=32, visibility_timeout=1):
        body = json.loads(base64.b64decode(message.content))
        if body["ContainerName"] == container.container_name:
            mine.append(body)
    assert mine == [
        {
            "Type": "BlobTrigger",
            "FunctionId": "Host.Functions.on_blob_client",
            "BlobType": "BlockBlob",
            "ContainerName": container.container_name,
            "BlobName": "bad.wav",
            "ETag": etag,
        }
    ]
    failures = [
        m for m in caplog.messages if m.startswith("Executed 'Functions.on_blob_client' (Failed")
    ]
    assert len(failures) == 5
    assert any("poison" in m and "bad.wav" in m for m in caplog.messages)


def test_failure_count_survives_a_restart(blob_app, container, make_host):
    container.upload_blob("bad.wav", b"fail")
    specs = index_app(find_function_app(blob_app))
    first = make_host(specs)
    for _ in range(3):
        first.scan_blobs("on_blob_client")
    first.stop()
    second = make_host(specs)
    assert len(second.scan_blobs("on_blob_client")) == 1
    assert len(second.scan_blobs("on_blob_client")) == 1
    assert second.scan_blobs("on_blob_client") == []  # 5 tries in total across both hosts


def test_input_stream_binding_and_event_grid_fallback(blob_app, storage_env, make_host, caplog):
    service = BlobServiceClient.from_connection_string(storage_env.connection_string)
    container = service.get_container_client(os.environ["DEVHOST_TEST_STREAM_CONTAINER"])
    container.create_container()
    container.upload_blob("in/call.wav", b"stream-data")
    container.upload_blob("out/ignored.wav", b"x")
    with caplog.at_level(logging.WARNING, logger="devhost"):
        host = make_host(blob_app)
    assert any("EventGrid" in m and "scans the container" in m for m in caplog.messages)

    outcomes = host.scan_blobs("on_blob_stream")
    assert [o.succeeded for o in outcomes] == [True]
    (call,) = [c for c in blob_app.calls if c["function"] == "stream"]
    assert call["name"] == f"{container.container_name}/in/call.wav"
    assert call["data"] == b"stream-data"
    assert call["arg"].length == len(b"stream-data")


def test_background_host_picks_up_new_blobs(blob_app, container, make_host):
    host = make_host(blob_app, blob_scan_interval=0.1)
    host.start()
    container.upload_blob("live.wav", b"live")
    wait_for(lambda: client_calls(blob_app), timeout=10, what="the blob trigger")
    assert client_calls(blob_app)[0]["name"] == "live.wav"


def test_scanning_pauses_while_found_blobs_wait_for_a_worker(blob_app, container, make_host):
    # A scan lists the whole container: while the blobs found earlier still wait for a worker,
    # another scan would only queue more behind them, so the host's loop skips it.
    host = make_host(blob_app)
    listener = host.blobs["on_blob_client"]
    extra = 3
    names = [f"held-{i:02d}.wav" for i in range(listener.backlog_limit + extra)]
    for name in names:
        container.upload_blob(name, b"hold")
    try:
        futures = listener.scan()
        assert len(futures) == len(names)
        assert listener.backlog == len(names)
        assert not listener.scan_due()
    finally:
        blob_app.gate.set()
    assert all(f.result(timeout=30).succeeded for f in futures)
    wait_for(lambda: listener.backlog == 0, timeout=10, what="the backlog to drain")
    assert listener.scan_due()
    assert sorted(c["name"] for c in client_calls(blob_app)) == names


def test_missing_container_is_scanned_as_empty(blob_app, make_host):
    host = make_host(blob_app)  # DEVHOST_TEST_CONTAINER was never created
    assert host.scan_blobs("on_blob_client") == []


def test_a_scan_that_found_nothing_is_followed_by_a_longer_pause():
    # A 1,000-blob listing taking 0.3 s: twice that while blobs arrive, ten times once idle.
    assert scan_pause(1.0, 0.3, found=True) == pytest.approx(1.0)
    assert scan_pause(1.0, 0.8, found=True) == pytest.approx(1.6)
    assert scan_pause(1.0, 0.3, found=False) == pytest.approx(3.0)
    # The idle pause stops growing at the host's own 10 s container scan ...
    assert scan_pause(1.0, 2.0, found=False) == pytest.approx(HOST_SCAN_INTERVAL)
    # ... but never falls below twice the listing, nor below the configured interval.
    assert scan_pause(1.0, 7.0, found=False) == pytest.approx(14.0)
    assert scan_pause(2.0, 0.01, found=False) == pytest.approx(2.0)
