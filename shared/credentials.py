"""Microsoft Entra credentials from `IdentityOptions`: the one place azure.identity is built.

`shared.storage_connection` decides *which* identity a connection (or the Speech client)
uses, purely; this module turns that decision into an azure-identity credential:

==================  ==============================================================
managed_identity    ManagedIdentityCredential: ``client_id=``, or
                    ``identity_config={"resource_id"|"object_id": ...}``, or none
                    (the system-assigned identity)
default             DefaultAzureCredential, ``managed_identity_client_id=`` when a
                    client id is given (else azure-identity reads AZURE_CLIENT_ID)
client_secret       ClientSecretCredential (a service principal, local development)
==================  ==============================================================

azure.identity is imported inside `build_credential`: it is heavy, and an app that uses a
connection string and a Speech key never needs it (cold start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.storage_connection import IdentityOptions

__all__ = ["build_credential"]


def build_credential(options: IdentityOptions) -> TokenCredential:
    """The azure-identity credential `options` describe (no request is made here)."""
    from azure.identity import (  # noqa: PLC0415 - heavy; only for identity-based access
        ClientSecretCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    if options.kind == "managed_identity":
        if options.client_id:
            return ManagedIdentityCredential(client_id=options.client_id)
        if options.resource_id:
            return ManagedIdentityCredential(identity_config={"resource_id": options.resource_id})
        if options.object_id:
            return ManagedIdentityCredential(identity_config={"object_id": options.object_id})
        return ManagedIdentityCredential()
    if options.kind == "client_secret":
        return ClientSecretCredential(
            options.tenant_id, options.client_id, options.client_secret.reveal()
        )
    if options.client_id:
        return DefaultAzureCredential(managed_identity_client_id=options.client_id)
    return DefaultAzureCredential()
