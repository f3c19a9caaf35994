"""Storage clients for a binding's `connection` setting, as the Functions host resolves it.

The connection is read by the app's own parser, `shared.storage_connection`, so devhost and
the app agree on every form: a connection string (`UseDevelopmentStorage=true` means the
local Azurite on its default ports), or identity-based settings (`<NAME>__blobServiceUri` /
`__queueServiceUri`, `__serviceUri` for a single-service binding, `__accountName` for
`AzureWebJobsStorage`) with the identity `__credential` / `__clientId` / ... choose
(`shared.credentials`). A connection that cannot work is a `BindingConfigError` naming the
function and the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.setting_refs import BindingConfigError
from shared.errors import ConfigurationError
from shared.storage import service_client
from shared.storage_connection import Service, StorageConnection, parse_connection
from shared.storage_transport import pooled_transport

DEFAULT_CONNECTION = "AzureWebJobsStorage"

# The well-known, public Azurite account (documented by Microsoft; not a secret).
_DEV_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={_DEV_KEY};"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def expand_connection_string(value: str) -> str:
    """Return `value`, with `UseDevelopmentStorage=true` expanded to Azurite's default endpoints."""
    compact = value.replace(" ", "").rstrip(";").lower()
    if compact == "usedevelopmentstorage=true":
        return DEVELOPMENT_STORAGE
    return value


def _connection(name: str, settings: Mapping[str, str], function: str) -> StorageConnection:
    try:
        return parse_connection(name, settings)
    except ConfigurationError as exc:
        raise BindingConfigError(
            f"Function '{function}': the connection '{name}' cannot be used: {exc}. Locally, "
            "set it to UseDevelopmentStorage=true in local.settings.json or the environment"
        ) from exc


_C = TypeVar("_C", BlobServiceClient, QueueServiceClient)


def _client(
    cls: type[_C], name: str, service: Service, settings: Mapping[str, str], function: str
) -> _C:
    connection = _connection(name or DEFAULT_CONNECTION, settings, function)
    if not connection.uses_identity:
        text = expand_connection_string(connection.connection_string.reveal())
        # The app's transport (wide pool, environment read once), as `service_client` gives.
        return cls.from_connection_string(text, transport=pooled_transport())
    try:
        return service_client(cls, connection, service)
    except ConfigurationError as exc:
        raise BindingConfigError(f"Function '{function}': {exc}") from exc


def blob_service(name: str, settings: Mapping[str, str], *, function: str) -> BlobServiceClient:
    """A BlobServiceClient for connection setting `name` (empty means AzureWebJobsStorage)."""
    return _client(BlobServiceClient, name, "blob", settings, function)


def queue_service(name: str, settings: Mapping[str, str], *, function: str) -> QueueServiceClient:
    """A QueueServiceClient for connection setting `name` (empty means AzureWebJobsStorage)."""
    return _client(QueueServiceClient, name, "queue", settings, function)
