"""devhost reads a binding's connection with the app's own parser (no network here)."""

from __future__ import annotations

import pytest
from azure.identity import ManagedIdentityCredential

from devhost.connections import DEVELOPMENT_STORAGE, blob_service, queue_service
from devhost.setting_refs import BindingConfigError

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


def test_development_storage_is_azurite_on_its_default_ports() -> None:
    service = blob_service("", {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, function="f")
    assert service.url.startswith("http://127.0.0.1:10000/devstoreaccount1")
    assert "devstoreaccount1" in DEVELOPMENT_STORAGE


def test_identity_settings_give_the_endpoint_and_the_managed_identity() -> None:
    settings = {
        "Data__blobServiceUri": "https://acct.blob.core.windows.net",
        "Data__queueServiceUri": "https://acct.queue.core.windows.net",
        "Data__credential": "managedidentity",
        "Data__clientId": CLIENT_ID,
    }
    blobs = blob_service("Data", settings, function="f")
    queues = queue_service("Data", settings, function="f")
    assert blobs.url.startswith("https://acct.blob.core.windows.net")
    assert queues.url.startswith("https://acct.queue.core.windows.net")
    assert isinstance(blobs.credential, ManagedIdentityCredential)
    assert blobs.credential._credential._settings["client_id"] == CLIENT_ID  # type: ignore[union-attr]


def test_service_uri_is_the_endpoint_of_the_bindings_own_service() -> None:
    settings = {"Q__serviceUri": "https://acct.queue.core.windows.net"}
    assert queue_service("Q", settings, function="f").url.startswith(
        "https://acct.queue.core.windows.net"
    )


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({}, "'Data'"),
        ({"Data__accountName": "acct"}, "Data__accountName"),
        ({"Data__blobServiceUri": "http://127.0.0.1:10000/x"}, "Data__blobServiceUri"),
    ],
)
def test_a_connection_that_cannot_work_names_the_function_and_setting(
    settings: dict[str, str], setting: str
) -> None:
    with pytest.raises(BindingConfigError) as info:
        blob_service("Data", settings, function="submit")
    assert "Function 'submit'" in str(info.value)
    assert setting in str(info.value)


def test_a_missing_endpoint_for_the_service_is_named() -> None:
    settings = {"Data__blobServiceUri": "https://acct.blob.core.windows.net"}
    with pytest.raises(BindingConfigError) as info:
        queue_service("Data", settings, function="complete")
    assert "Function 'complete'" in str(info.value)
    assert "Data__queueServiceUri" in str(info.value)
