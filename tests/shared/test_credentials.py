"""Which credential, for which identity: Storage clients and the Speech client (no network).

azure-identity keeps the identity a ManagedIdentityCredential asks for in its inner client's
settings; `identity_of` reads it there (no request is made, so nothing else shows it).
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.identity import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from shared.credentials import build_credential
from shared.settings import Settings
from shared.speech_auth import default_credential
from shared.speech_client import SpeechClient
from shared.storage import StorageClients
from shared.storage_connection import IdentityOptions

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
OTHER_ID = "99999999-8888-7777-6666-555555555555"


@pytest.fixture(autouse=True)
def _no_identity_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    # azure-identity reads these itself; the caller's shell must not decide the outcome.
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def identity_of(credential: Any) -> dict[str, Any]:
    """The managed identity a credential asks for: {"client_id": ..., "identity_config": ...}."""
    if isinstance(credential, DefaultAzureCredential):
        (managed,) = [c for c in credential.credentials if isinstance(c, ManagedIdentityCredential)]
        credential = managed
    assert isinstance(credential, ManagedIdentityCredential)
    return dict(credential._credential._settings)  # type: ignore[union-attr]


def identity_env(name: str = "AzureWebJobsStorage", **props: str) -> dict[str, str]:
    env = {
        f"{name}__{service}ServiceUri": f"https://acct.{service}.core.windows.net/"
        for service in ("blob", "queue", "table")
    }
    env.update({f"{name}__{key}": value for key, value in props.items()})
    return env


# --------------------------------------------------------------------------- build_credential


def test_user_assigned_managed_identity_by_client_id() -> None:
    credential = build_credential(IdentityOptions("managed_identity", client_id=CLIENT_ID))
    assert type(credential) is ManagedIdentityCredential
    assert identity_of(credential)["client_id"] == CLIENT_ID


@pytest.mark.parametrize("key", ["resource_id", "object_id"])
def test_user_assigned_managed_identity_by_resource_or_object_id(key: str) -> None:
    options = (
        IdentityOptions("managed_identity", resource_id="/the/id")
        if key == "resource_id"
        else IdentityOptions("managed_identity", object_id="/the/id")
    )
    credential = build_credential(options)
    assert type(credential) is ManagedIdentityCredential
    assert identity_of(credential) == {"client_id": None, "identity_config": {key: "/the/id"}}


def test_system_assigned_managed_identity() -> None:
    credential = build_credential(IdentityOptions("managed_identity"))
    assert type(credential) is ManagedIdentityCredential
    assert identity_of(credential) == {"client_id": None, "identity_config": {}}


def test_default_chain_with_and_without_a_managed_identity_client_id() -> None:
    with_id = build_credential(IdentityOptions("default", client_id=CLIENT_ID))
    assert type(with_id) is DefaultAzureCredential
    assert identity_of(with_id)["client_id"] == CLIENT_ID
    without = build_credential(IdentityOptions("default"))
    assert type(without) is DefaultAzureCredential
    assert identity_of(without)["client_id"] is None


def test_service_principal() -> None:
    from shared.secret import Secret  # noqa: PLC0415

    options = IdentityOptions(
        "client_secret", client_id=CLIENT_ID, tenant_id="tenant", client_secret=Secret("s3cret")
    )
    credential = build_credential(options)
    assert type(credential) is ClientSecretCredential
    assert credential._client_id == CLIENT_ID


# --------------------------------------------------------------------------- Storage


def test_storage_with_credential_and_client_id_uses_that_managed_identity() -> None:
    env = identity_env(credential="managedidentity", clientId=CLIENT_ID)
    clients = StorageClients.from_setting(env, "AzureWebJobsStorage")
    credential = clients.blob.credential
    assert type(credential) is ManagedIdentityCredential
    assert identity_of(credential)["client_id"] == CLIENT_ID
    # One credential (one token cache) for the three services.
    assert clients.queue.credential is credential
    assert clients.table.credential is credential
    assert clients.queue.url.startswith("https://acct.queue.core.windows.net")


def test_storage_without_credential_uses_the_default_chain() -> None:
    clients = StorageClients.from_setting(identity_env("AudioStorage"), "AudioStorage")
    assert type(clients.blob.credential) is DefaultAzureCredential


def test_storage_with_a_connection_string_has_no_token_credential() -> None:
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    clients = StorageClients.from_setting(env, "AzureWebJobsStorage")
    assert not isinstance(
        clients.blob.credential, ManagedIdentityCredential | DefaultAzureCredential
    )


# --------------------------------------------------------------------------- Speech


def test_speech_uses_azure_client_id_first() -> None:
    env = {
        "AZURE_CLIENT_ID": OTHER_ID,
        **identity_env(credential="managedidentity", clientId=CLIENT_ID),
    }
    credential = default_credential(env, "AzureWebJobsStorage")
    assert type(credential) is DefaultAzureCredential
    assert identity_of(credential)["client_id"] == OTHER_ID


def test_speech_uses_the_storage_connections_user_assigned_identity() -> None:
    """The Flex quickstart's settings: no AZURE_CLIENT_ID, the identity on the connection."""
    env = identity_env("AudioStorage", credential="managedidentity", clientId=CLIENT_ID)
    credential = default_credential(env, "AudioStorage")
    assert type(credential) is ManagedIdentityCredential
    assert identity_of(credential)["client_id"] == CLIENT_ID


def test_speech_without_any_identity_setting_uses_the_default_chain() -> None:
    credential = default_credential({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert type(credential) is DefaultAzureCredential
    assert identity_of(credential)["client_id"] is None


def test_speech_client_from_settings_signs_in_as_the_storage_identity() -> None:
    env = identity_env(credential="managedidentity", clientId=CLIENT_ID)
    settings = Settings(speech_endpoint="https://speech.example", speech_rate_limit=None)
    client = SpeechClient.from_settings(settings, env=env)
    assert repr(client.transport.auth).startswith("TokenAuth(ManagedIdentityCredential,")
    credential = client.transport.auth._credential  # type: ignore[attr-defined]
    assert identity_of(credential)["client_id"] == CLIENT_ID
