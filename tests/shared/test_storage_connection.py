"""The storage connection parser: every form the host documents, for AzureWebJobsStorage and
a separate connection; what nothing can use; what the blob SDK binding cannot use."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.storage_connection import (
    DATA_USE,
    SERVICES,
    IdentityOptions,
    check_blob_sdk_binding,
    identity_for_speech,
    parse_connection,
)

CONNECTIONS = ["AzureWebJobsStorage", "AudioStorage"]
ACCOUNT_KEY = "c2VjcmV0LWtleS1ub3QtcmVhbA=="
CONN_STRING = (
    f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};"
    "EndpointSuffix=core.windows.net"
)
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
RESOURCE_ID = (
    "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/id-app"
)


def uris(name: str) -> dict[str, str]:
    return {
        f"{name}__{service}ServiceUri": f"https://acct.{service}.core.windows.net/"
        for service in SERVICES
    }


def refused(name: str, env: dict[str, str]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        parse_connection(name, env)
    return info.value


def binding_refused(name: str, env: dict[str, str]) -> ConfigurationError:
    connection = parse_connection(name, env)
    with pytest.raises(ConfigurationError) as info:
        check_blob_sdk_binding(connection, env)
    return info.value


# --------------------------------------------------------------------------- accepted forms


@pytest.mark.parametrize("name", CONNECTIONS)
def test_a_connection_string(name: str) -> None:
    env = {name: f"  {CONN_STRING}  "}
    connection = parse_connection(name, env)
    assert not connection.uses_identity
    assert connection.connection_string.reveal() == CONN_STRING
    assert connection.identity is None
    check_blob_sdk_binding(connection, env)
    connection.require_services(SERVICES, used_for=DATA_USE)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_user_assigned_identity_by_client_id(name: str) -> None:
    """What the azd template and the Flex quickstart set."""
    env = {**uris(name), f"{name}__credential": "managedidentity", f"{name}__clientId": CLIENT_ID}
    connection = parse_connection(name, env)
    assert connection.uses_identity
    assert connection.uri_for("queue") == "https://acct.queue.core.windows.net/"
    assert connection.identity == IdentityOptions(
        "managed_identity", client_id=CLIENT_ID, source=f"{name}__clientId"
    )
    connection.require_services(SERVICES, used_for=DATA_USE)
    check_blob_sdk_binding(connection, env)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_system_assigned_identity(name: str) -> None:
    env = {**uris(name), f"{name}__credential": "ManagedIdentity"}  # any letter case
    connection = parse_connection(name, env)
    assert connection.identity == IdentityOptions("managed_identity", source=f"{name}__credential")
    check_blob_sdk_binding(connection, env)


@pytest.mark.parametrize("name", CONNECTIONS)
@pytest.mark.parametrize(
    ("prop", "field"),
    [("managedIdentityResourceId", "resource_id"), ("managedIdentityObjectId", "object_id")],
)
def test_user_assigned_identity_by_resource_or_object_id(name: str, prop: str, field: str) -> None:
    env = {**uris(name), f"{name}__credential": "managedidentity", f"{name}__{prop}": RESOURCE_ID}
    identity = parse_connection(name, env).identity
    assert identity is not None
    assert identity.kind == "managed_identity"
    assert getattr(identity, field) == RESOURCE_ID
    assert identity.client_id == ""


@pytest.mark.parametrize("name", CONNECTIONS)
def test_without_credential_the_default_chain_is_used(name: str) -> None:
    """Locally the host signs in as the developer; `__clientId` alone picks its managed
    identity in Azure (DefaultAzureCredential's managed_identity_client_id)."""
    assert parse_connection(name, uris(name)).identity == IdentityOptions("default")
    env = {**uris(name), f"{name}__clientId": CLIENT_ID}
    assert parse_connection(name, env).identity == IdentityOptions(
        "default", client_id=CLIENT_ID, source=f"{name}__clientId"
    )


@pytest.mark.parametrize("name", CONNECTIONS)
def test_service_principal_for_local_development(name: str) -> None:
    env = {
        **uris(name),
        f"{name}__tenantId": "tenant",
        f"{name}__clientId": CLIENT_ID,
        f"{name}__clientSecret": "s3cret-value",
    }
    identity = parse_connection(name, env).identity
    assert identity is not None
    assert (identity.kind, identity.tenant_id, identity.client_id) == (
        "client_secret",
        "tenant",
        CLIENT_ID,
    )
    assert identity.client_secret.reveal() == "s3cret-value"
    assert "s3cret" not in repr(identity)
    assert "s3cret" not in identity.describe()


@pytest.mark.parametrize("name", CONNECTIONS)
def test_property_names_are_case_insensitive_like_the_host(name: str) -> None:
    env = {
        f"{name}__BlobServiceUri": "https://acct.blob.core.windows.net",
        f"{name}__QUEUESERVICEURI": "https://acct.queue.core.windows.net",
        f"{name}__tableserviceuri": "https://acct.table.core.windows.net",
        f"{name}__Credential": "managedidentity",
        f"{name}__ClientID": CLIENT_ID,
    }
    connection = parse_connection(name, env)
    connection.require_services(SERVICES, used_for=DATA_USE)
    assert connection.identity is not None
    assert connection.identity.client_id == CLIENT_ID
    assert connection.setting("blobServiceUri") == f"{name}__BlobServiceUri"  # as written


@pytest.mark.parametrize("name", CONNECTIONS)
def test_service_uri_serves_one_service_only(name: str) -> None:
    env = {f"{name}__serviceUri": "https://acct.blob.core.windows.net"}
    connection = parse_connection(name, env)
    # A single-service binding reads it as its own service's endpoint; a specific one wins.
    assert connection.uri_for("blob") == "https://acct.blob.core.windows.net"
    both = {**env, f"{name}__queueServiceUri": "https://acct.queue.core.windows.net"}
    assert parse_connection(name, both).uri_for("queue") == "https://acct.queue.core.windows.net"
    # ...but it cannot serve a connection used for blobs, queues and tables.
    with pytest.raises(ConfigurationError) as info:
        connection.require_services(SERVICES, used_for=DATA_USE)
    assert info.value.setting == f"{name}__serviceUri"
    for service in SERVICES:
        assert f"{name}__{service}ServiceUri" in str(info.value)


def test_account_name_for_host_storage() -> None:
    env = {
        "AzureWebJobsStorage__accountName": "acct",
        "AzureWebJobsStorage__credential": "managedidentity",
    }
    connection = parse_connection("AzureWebJobsStorage", env)
    assert dict(connection.service_uris) == {
        s: f"https://acct.{s}.core.windows.net" for s in SERVICES
    }
    connection.require_services(SERVICES, used_for=DATA_USE)
    check_blob_sdk_binding(connection, env)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_missing_service_uris_are_named(name: str) -> None:
    env = {
        f"{name}__blobServiceUri": "https://acct.blob.core.windows.net",
        f"{name}__tabelServiceUri": "x",
    }
    connection = parse_connection(name, env)
    with pytest.raises(ConfigurationError) as info:
        connection.require_services(SERVICES, used_for=DATA_USE)
    assert info.value.setting == f"{name}__queueServiceUri"
    assert "https://<account>.queue.core.windows.net" in str(info.value)
    assert f"{name}__tabelServiceUri" in str(info.value)  # the typo is pointed out


# --------------------------------------------------------------------------- refused forms


@pytest.mark.parametrize("name", CONNECTIONS)
def test_a_missing_connection_is_named(name: str) -> None:
    error = refused(name, {f"{name}__credential": "managedidentity", name: "  "})
    assert error.setting == name
    assert "UseDevelopmentStorage=true" in str(error)
    assert f"{name}__blobServiceUri" in str(error)


def test_account_name_on_another_connection_is_refused_with_what_to_set() -> None:
    error = refused("AudioStorage", {"AudioStorage__accountName": "acct"})
    assert error.setting == "AudioStorage__accountName"
    assert "AudioStorage__blobServiceUri=https://acct.blob.core.windows.net" in str(error)
    assert "AudioStorage__queueServiceUri" in str(error)


def test_a_bad_account_name_is_refused() -> None:
    error = refused("AzureWebJobsStorage", {"AzureWebJobsStorage__accountName": "My_Account"})
    assert error.setting == "AzureWebJobsStorage__accountName"


@pytest.mark.parametrize("name", CONNECTIONS)
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:10000/devstoreaccount1", "only sent over https"),
        ("acct.blob.core.windows.net", "expected a URL"),
        ("https://acct.blob.core.windows.net/?sv=2024&sig=x", "without a query string"),
    ],
)
def test_service_uris_must_be_https_endpoints(name: str, uri: str, expected: str) -> None:
    error = refused(name, {**uris(name), f"{name}__blobServiceUri": uri})
    assert error.setting == f"{name}__blobServiceUri"
    assert expected in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_unsupported_credential_kinds_are_refused(name: str) -> None:
    error = refused(name, {**uris(name), f"{name}__credential": "workloadidentity"})
    assert error.setting == f"{name}__credential"
    assert "expected managedidentity" in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_two_identities_at_once_are_refused(name: str) -> None:
    env = {
        **uris(name),
        f"{name}__credential": "managedidentity",
        f"{name}__clientId": CLIENT_ID,
        f"{name}__managedIdentityResourceId": RESOURCE_ID,
    }
    error = refused(name, env)
    assert error.setting == f"{name}__managedIdentityResourceId"
    assert "only one" in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
@pytest.mark.parametrize("missing", ["tenantId", "clientId", "clientSecret"])
def test_an_incomplete_service_principal_names_what_is_missing(name: str, missing: str) -> None:
    env = {
        **uris(name),
        f"{name}__tenantId": "tenant",
        f"{name}__clientId": CLIENT_ID,
        f"{name}__clientSecret": "s3cret-value",
    }
    del env[f"{name}__{missing}"]
    error = refused(name, env)
    assert error.setting == f"{name}__{missing}"
    assert "s3cret" not in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_resource_id_without_managed_identity_credential_is_refused(name: str) -> None:
    error = refused(name, {**uris(name), f"{name}__managedIdentityResourceId": RESOURCE_ID})
    assert error.setting == f"{name}__managedIdentityResourceId"
    assert f"{name}__credential=managedidentity" in str(error)


def test_a_store_certificate_is_refused() -> None:
    error = refused(
        "AudioStorage", {**uris("AudioStorage"), "AudioStorage__clientCertificate": "AB12"}
    )
    assert error.setting == "AudioStorage__clientCertificate"


# --------------------------------------------------------------------------- blob SDK binding


@pytest.mark.parametrize("name", CONNECTIONS)
@pytest.mark.parametrize(
    ("extra", "setting", "expected"),
    [
        (
            {"credential": "managedidentity", "managedIdentityResourceId": RESOURCE_ID},
            "managedIdentityResourceId",
            "__clientId to the user-assigned identity's client id",
        ),
        ({"clientId": CLIENT_ID}, "clientId", "__credential=managedidentity too"),
        (
            {"tenantId": "t", "clientId": CLIENT_ID, "clientSecret": "s3cret-value"},
            "clientSecret",
            "only with a managed identity",
        ),
    ],
)
def test_identities_the_blob_binding_cannot_use_are_refused(
    name: str, extra: dict[str, str], setting: str, expected: str
) -> None:
    env = {**uris(name), **{f"{name}__{k}": v for k, v in extra.items()}}
    error = binding_refused(name, env)
    assert error.setting == f"{name}__{setting}"
    assert expected in str(error)
    assert "s3cret" not in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_the_blob_binding_needs_exact_names(name: str) -> None:
    env = {**uris(name), f"{name}__Credential": "managedidentity", f"{name}__clientId": CLIENT_ID}
    error = binding_refused(name, env)
    assert error.setting == f"{name}__Credential"
    assert f"spell it {name}__credential" in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_the_blob_binding_needs_the_exact_connection_name(name: str) -> None:
    env = {name.lower(): CONN_STRING}  # the host reads it; the binding does not
    error = binding_refused(name, env)
    assert error.setting == name.lower()
    assert f"spell it {name}" in str(error)
    assert ACCOUNT_KEY not in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_an_empty_connection_setting_next_to_identity_settings_is_refused(name: str) -> None:
    # The host ignores the empty value; the binding would use it as a connection string.
    env = {name: "", **uris(name), f"{name}__credential": "managedidentity"}
    error = binding_refused(name, env)
    assert error.setting == name
    assert "delete the setting" in str(error)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_service_uri_and_blob_service_uri_must_agree_for_the_binding(name: str) -> None:
    env = {**uris(name), f"{name}__serviceUri": "https://other.blob.core.windows.net"}
    error = binding_refused(name, env)
    assert error.setting == f"{name}__serviceUri"
    env[f"{name}__serviceUri"] = "https://ACCT.blob.core.windows.net"  # the same endpoint
    check_blob_sdk_binding(parse_connection(name, env), env)


@pytest.mark.parametrize("name", CONNECTIONS)
def test_a_connection_string_with_identity_settings_is_refused_for_the_binding(
    name: str,
) -> None:
    env = {
        name: CONN_STRING,
        f"{name}__credential": "managedidentity",
        f"{name}__clientId": CLIENT_ID,
    }
    error = binding_refused(name, env)
    assert error.setting == f"{name}__credential"
    assert ACCOUNT_KEY not in str(error)


# --------------------------------------------------------------------------- Speech identity


def test_speech_identity_prefers_azure_client_id() -> None:
    env = {
        "AZURE_CLIENT_ID": "from-env",
        **uris("AzureWebJobsStorage"),
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    }
    assert identity_for_speech(env, "AzureWebJobsStorage") == IdentityOptions(
        "default", client_id="from-env", source="AZURE_CLIENT_ID"
    )


def test_speech_identity_falls_back_to_the_storage_connections_identity() -> None:
    env = {
        **uris("AudioStorage"),
        "AudioStorage__credential": "managedidentity",
        "AudioStorage__clientId": CLIENT_ID,
    }
    identity = identity_for_speech(env, "AudioStorage")
    assert (identity.kind, identity.client_id) == ("managed_identity", CLIENT_ID)
    assert identity.source == "AudioStorage__clientId"


@pytest.mark.parametrize(
    "env",
    [
        {"AzureWebJobsStorage": CONN_STRING},  # a key: no identity to borrow
        {},  # no connection (the settings check reports that)
        {"AzureWebJobsStorage__credential": "bogus", **uris("AzureWebJobsStorage")},
    ],
)
def test_speech_identity_is_the_default_chain_otherwise(env: dict[str, str]) -> None:
    assert identity_for_speech(env, "AzureWebJobsStorage") == IdentityOptions("default")
