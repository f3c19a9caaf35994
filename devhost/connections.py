"""Storage clients for a binding's `connection` setting, as the Functions host resolves it.

The setting holds a connection string (`UseDevelopmentStorage=true` means the local Azurite
on its default ports) or, for identity-based connections, `<NAME>__blobServiceUri` /
`__queueServiceUri` / `__accountName` settings used with DefaultAzureCredential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.setting_refs import BindingConfigError

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


def _identity_url(name: str, service: str, settings: Mapping[str, str]) -> str | None:
    for key in (f"{name}__{service}ServiceUri", f"{name}__serviceUri"):
        if settings.get(key):
            return settings[key]
    account = settings.get(f"{name}__accountName")
    if account:
        return f"https://{account}.{service}.core.windows.net"
    return None


def _credential() -> Any:
    return DefaultAzureCredential()


def _missing(name: str, function: str) -> BindingConfigError:
    return BindingConfigError(
        f"Function '{function}': the connection setting '{name}' is not set. Set it to a "
        "storage connection string (locally: UseDevelopmentStorage=true) in local.settings.json "
        f"or the environment, or use identity settings '{name}__blobServiceUri' etc."
    )


def blob_service(name: str, settings: Mapping[str, str], *, function: str) -> BlobServiceClient:
    """A BlobServiceClient for connection setting `name` (empty means AzureWebJobsStorage)."""
    name = name or DEFAULT_CONNECTION
    if settings.get(name):
        return BlobServiceClient.from_connection_string(expand_connection_string(settings[name]))
    url = _identity_url(name, "blob", settings)
    if url is None:
        raise _missing(name, function)
    return BlobServiceClient(account_url=url, credential=_credential())


def queue_service(name: str, settings: Mapping[str, str], *, function: str) -> QueueServiceClient:
    """A QueueServiceClient for connection setting `name` (empty means AzureWebJobsStorage)."""
    name = name or DEFAULT_CONNECTION
    if settings.get(name):
        return QueueServiceClient.from_connection_string(expand_connection_string(settings[name]))
    url = _identity_url(name, "queue", settings)
    if url is None:
        raise _missing(name, function)
    return QueueServiceClient(account_url=url, credential=_credential())
