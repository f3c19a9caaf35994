"""Fixture app: blob triggers bound as the SDK BlobClient and as func.InputStream.

Blobs whose content starts with b"fail" make the function raise; b"hold" makes it wait
until the test sets `gate`.
"""

from __future__ import annotations

import threading
from typing import Any

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

app = func.FunctionApp()
calls: list[dict[str, Any]] = []
_lock = threading.Lock()
gate = threading.Event()


@app.blob_trigger(
    arg_name="client",
    path="%DEVHOST_TEST_CONTAINER%/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource.LOGS_AND_CONTAINER_SCAN,
)
def on_blob_client(client: blob.BlobClient) -> None:
    data = client.download_blob().readall()
    with _lock:
        calls.append({"function": "client", "arg": client, "name": client.blob_name, "data": data})
    if data.startswith(b"fail"):
        raise RuntimeError(f"asked to fail on {client.blob_name}")
    if data.startswith(b"hold") and not gate.wait(60):
        raise RuntimeError("the test never opened the gate")


@app.blob_trigger(
    arg_name="stream",
    path="%DEVHOST_TEST_STREAM_CONTAINER%/in/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource.EVENT_GRID,
)
def on_blob_stream(stream: func.InputStream) -> None:
    with _lock:
        calls.append(
            {"function": "stream", "arg": stream, "name": stream.name, "data": stream.read()}
        )
