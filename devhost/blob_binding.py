"""Build the value a blob-bound parameter receives, with the types the Python worker passes.

SDK types (`azurefunctions.extensions.bindings.blob.BlobClient`, `ContainerClient`,
`StorageStreamDownloader`) go through the extension's own converter with the same
ModelBindingData the host sends, so the function gets exactly what it gets on Azure: a
sync `azure.storage.blob.BlobClient` built from the connection setting. Other annotations
get the blob's content: `func.InputStream` (also the default), `bytes` or `str`.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from azure.functions.blob import InputStream
from azure.storage.blob import BlobServiceClient
from azurefunctions.extensions.base import Datum
from azurefunctions.extensions.bindings.blob import (
    BlobClient,
    BlobClientConverter,
    ContainerClient,
    StorageStreamDownloader,
)

SDK_TYPES = (BlobClient, ContainerClient, StorageStreamDownloader)


def is_sdk_type(annotation: Any) -> bool:
    """True when `annotation` is one of the blob extension's SDK types."""
    return isinstance(annotation, type) and issubclass(annotation, SDK_TYPES)


def model_binding_data(connection: str, container: str, blob: str) -> Datum:
    """The `model_binding_data` Datum the host sends for an SDK-type blob binding."""
    content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": blob})
    value = SimpleNamespace(
        version="1.0",
        source="AzureStorageBlobs",
        content_type="application/json",
        content=content,
    )
    return Datum(value=value, type="model_binding_data")


def blob_argument(
    annotation: Any,
    *,
    service: BlobServiceClient,
    connection: str,
    container: str,
    blob: str,
) -> Any:
    """The argument for a parameter bound to blob `container/blob`, by its annotation."""
    if is_sdk_type(annotation):
        return BlobClientConverter.decode(
            model_binding_data(connection, container, blob),
            trigger_metadata=None,
            pytype=annotation,
        )
    client = service.get_blob_client(container, blob)
    downloader = client.download_blob()
    data = downloader.readall()
    if annotation is bytes:
        return data
    if annotation is str:
        return data.decode("utf-8")
    props = downloader.properties
    return InputStream(
        data=data,
        name=f"{container}/{blob}",
        length=len(data),
        uri=client.url,
        blob_properties={
            "ContentType": props.content_settings.content_type,
            "ETag": props.etag,
            "LastModified": props.last_modified.isoformat() if props.last_modified else None,
            "Length": props.size,
        },
        metadata=dict(props.metadata or {}),
    )
