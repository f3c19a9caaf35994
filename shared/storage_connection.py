"""A storage connection as the Functions host reads it: one pure parser, used everywhere.

A binding's ``connection`` names a group of app settings. Either ``<NAME>`` holds a
connection string, or ``<NAME>__<property>`` settings describe an identity-based connection
(Functions docs, "identity-based connections"; property names are case-insensitive, as in
the host's configuration):

=============================  ==================================================================
``__blobServiceUri``,          the service endpoints (https). ``__serviceUri`` names the one
``__queueServiceUri``,         service of a single-service binding (blob for a blob binding,
``__tableServiceUri``,         queue for a queue binding); the specific form wins when both are
``__serviceUri``               set. It cannot serve a connection used for several services.
``__accountName``              ``AzureWebJobsStorage`` only: endpoints inferred for an account
                               in global Azure (``https://<name>.<service>.core.windows.net``).
``__credential``               ``managedidentity``: a managed identity, the system-assigned one
                               unless ``__clientId`` or ``__managedIdentityResourceId`` (or
                               ``__managedIdentityObjectId``) names a user-assigned one.
                               Unset: DefaultAzureCredential (the developer's sign-in locally),
                               with ``__clientId`` as its managed identity.
``__tenantId``, ``__clientId``,  without ``__credential``: a service principal (the host
``__clientSecret``             documents it for local development only).
=============================  ==================================================================

`parse_connection` turns the settings into a `StorageConnection` (a connection string, or
service URIs plus `IdentityOptions`), refusing with `ConfigurationError` what no consumer
can use: a connection that does not exist, ``__accountName`` on another connection, an
unknown ``__credential``, two identities at once, an incomplete service principal, a URI
that is not https. `check_blob_sdk_binding` refuses, in addition, what the blob SDK-type
binding (azurefunctions-extensions-bindings-blob 1.1.2) cannot use for the trigger's
connection: it reads the settings itself, by their exact names, and knows only a
connection string, ``__serviceUri``/``__blobServiceUri`` (plus ``__accountName`` for
``AzureWebJobsStorage``) and a managed identity chosen by ``__credential`` + ``__clientId``;
anything else fails at every invocation, so the app refuses it at indexing instead.

`identity_for_speech` chooses the identity the Speech client signs in with. Pure: no Azure
imports (it runs when the app is indexed); `shared.credentials` builds the credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

from shared.errors import ConfigurationError
from shared.secret import NO_SECRET, Secret

__all__ = [
    "DATA_USE",
    "DEFAULT_IDENTITY",
    "HOST_CONNECTION",
    "SERVICES",
    "IdentityOptions",
    "Service",
    "StorageConnection",
    "check_blob_sdk_binding",
    "identity_for_speech",
    "parse_connection",
]

HOST_CONNECTION: Final = "AzureWebJobsStorage"
# What the app's data connection (STORAGE_CONNECTION) serves: blobs, a queue and a table.
DATA_USE: Final = "recordings, transcripts, the job table and the completion queue"
SERVICES: Final = ("blob", "queue", "table")
Service = Literal["blob", "queue", "table"]
IdentityKind = Literal["managed_identity", "default", "client_secret"]

# Every property the host's identity-based connections read, by its lowercase name.
_PROPERTIES: Final = {
    name.lower(): name
    for name in (
        "serviceUri",
        "blobServiceUri",
        "queueServiceUri",
        "tableServiceUri",
        "accountName",
        "credential",
        "clientId",
        "managedIdentityResourceId",
        "managedIdentityObjectId",
        "tenantId",
        "clientSecret",
        "clientCertificate",
    )
}
_ACCOUNT_NAME: Final = re.compile(r"^[a-z0-9]{3,24}$")
# Names the blob SDK binding looks up with `in os.environ`, in its order of precedence.
_BLOB_BINDING_LOOKUPS: Final = ("", "__serviceUri", "__blobServiceUri")


@dataclass(frozen=True)
class IdentityOptions:
    """Which Microsoft Entra credential to use, and for which identity.

    `kind`: ``managed_identity`` (ManagedIdentityCredential: the system-assigned identity,
    or the user-assigned one named by `client_id`, `resource_id` or `object_id`),
    ``default`` (DefaultAzureCredential, `client_id` as its managed identity), or
    ``client_secret`` (a service principal). `source` names the setting that chose it.
    """

    kind: IdentityKind
    client_id: str = ""
    resource_id: str = ""
    object_id: str = ""
    tenant_id: str = ""
    client_secret: Secret = NO_SECRET
    source: str = ""

    def describe(self) -> str:
        """In words, without secrets: e.g. "managed identity (client id 1234...)"."""
        if self.kind == "client_secret":
            return f"service principal {self.client_id} (tenant {self.tenant_id})"
        chosen = next(
            (
                f"{what} {value}"
                for what, value in (
                    ("client id", self.client_id),
                    ("resource id", self.resource_id),
                    ("object id", self.object_id),
                )
                if value
            ),
            "",
        )
        if self.kind == "managed_identity":
            if chosen:
                return f"user-assigned managed identity ({chosen})"
            return "system-assigned managed identity"
        if chosen:
            return f"DefaultAzureCredential with managed identity {chosen}"
        return "DefaultAzureCredential (system-assigned identity in Azure, your sign-in locally)"


DEFAULT_IDENTITY: Final = IdentityOptions("default")


@dataclass(frozen=True)
class StorageConnection:
    """One connection: a connection string, or identity-based service URIs and identity.

    `settings` maps each property found (lowercase name, "" for the bare connection) to the
    app setting that holds it, so messages name what the user actually wrote.
    """

    name: str
    connection_string: Secret = NO_SECRET
    service_uris: Mapping[str, str] = field(default_factory=dict)  # "blob" -> URI
    service_uri: str = ""  # the single-service `__serviceUri`
    identity: IdentityOptions | None = None
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def uses_identity(self) -> bool:
        """True for an identity-based connection (no connection string)."""
        return not self.connection_string

    def setting(self, prop: str) -> str:
        """The app setting holding property `prop` (as written, or as it should be)."""
        return self.settings.get(prop.lower(), f"{self.name}__{prop}")

    def uri_for(self, service: Service) -> str | None:
        """The endpoint of `service` for a single-service binding: the specific
        ``__<service>ServiceUri`` (or ``__accountName``), else ``__serviceUri``."""
        return self.service_uris.get(service) or self.service_uri or None

    def require_services(self, services: Iterable[Service], *, used_for: str) -> None:
        """Raise `ConfigurationError` unless each of `services` has its own endpoint.

        For a connection used across several services, where ``__serviceUri`` cannot stand
        in (the host reads it as the endpoint of whichever service a binding uses).
        """
        if not self.uses_identity:
            return
        wanted = list(services)
        missing = [s for s in wanted if s not in self.service_uris]
        if not missing:
            return
        names = ", ".join(f"{self.name}__{s}ServiceUri" for s in wanted)
        if self.service_uri:
            raise ConfigurationError(
                self.setting("serviceUri"),
                f"names a single service, but {self.name} is used for {used_for}: set {names} "
                "instead (https://<account>.<service>.core.windows.net)",
            )
        first = missing[0]
        raise ConfigurationError(
            f"{self.name}__{first}ServiceUri",
            f"missing: {self.name} is an identity-based connection used for {used_for}, so it "
            f"needs {names} (e.g. https://<account>.{first}.core.windows.net)"
            + _unknown_note(self),
        )


def parse_connection(name: str, env: Mapping[str, str]) -> StorageConnection:
    """The connection `name` as the host reads it from `env`; `ConfigurationError` naming
    the setting when it is missing or cannot work (see the module docstring)."""
    props = _properties(name, env)
    text = _value(env, props.get("", name))
    if text:
        return StorageConnection(name, connection_string=Secret(text), settings=props)
    values = {prop: env[key].strip() for prop, key in props.items() if prop and env[key].strip()}
    known = {prop for prop in values if prop in _PROPERTIES}
    if not known & {
        "serviceuri",
        "blobserviceuri",
        "queueserviceuri",
        "tableserviceuri",
        "accountname",
    }:
        raise ConfigurationError(name, _missing_message(name, props, values))
    uris = _service_uris(name, props, values)
    generic = values.get("serviceuri", "")
    if generic:
        _check_https(props["serviceuri"], generic, "<account>.blob.core.windows.net")
    return StorageConnection(
        name,
        service_uris=uris,
        service_uri=generic,
        identity=_identity(name, props, values),
        settings=props,
    )


def check_blob_sdk_binding(connection: StorageConnection, env: Mapping[str, str]) -> None:
    """Refuse, naming the setting, what the blob SDK-type binding cannot use for a trigger.

    The binding (azurefunctions-extensions-bindings-blob 1.1.2) builds its own client at
    every invocation from the exact names ``<NAME>``, ``<NAME>__serviceUri``,
    ``<NAME>__blobServiceUri`` (``AzureWebJobsStorage__accountName``), and, for the
    credential, ``<NAME>__credential`` + ``<NAME>__clientId`` (a user-assigned managed
    identity) or else the system-assigned managed identity.
    """
    name = connection.name
    for suffix in _BLOB_BINDING_LOOKUPS:
        key = f"{name}{suffix}"
        if key in env:
            if not env[key].strip():
                raise ConfigurationError(
                    key,
                    "is set but empty: the blob trigger's SDK binding would take the empty "
                    f"value as {'the connection string' if not suffix else 'the blob endpoint'}; "
                    "delete the setting",
                )
            break
    written = connection.settings.get("")
    if written is not None and written != name and not connection.uses_identity:
        raise ConfigurationError(
            written, f"spell it {name}: the blob trigger's SDK binding reads that exact name"
        )
    if not connection.uses_identity:
        for prop in ("credential", "clientid"):
            if prop in connection.settings:
                raise ConfigurationError(
                    connection.settings[prop],
                    f"{name} holds a connection string, but with {name}__credential and "
                    f"{name}__clientId also set the blob trigger's SDK binding would use the "
                    "connection string as an endpoint: delete the identity settings or the "
                    "connection string",
                )
        return
    for prop in ("serviceUri", "blobServiceUri", "credential", "clientId"):
        written = connection.settings.get(prop.lower())
        if written is not None and written != f"{name}__{prop}":
            raise ConfigurationError(
                written,
                f"spell it {name}__{prop}: the blob trigger's SDK binding reads that exact name",
            )
    blob_uri = connection.service_uris.get("blob")
    if connection.service_uri and blob_uri and _same_uri(connection.service_uri, blob_uri) is False:
        raise ConfigurationError(
            connection.setting("serviceUri"),
            f"differs from {connection.setting('blobServiceUri')}: the host uses the latter, "
            "the blob trigger's SDK binding the former; set only "
            f"{name}__blobServiceUri",
        )
    identity = connection.identity or DEFAULT_IDENTITY
    instead = (
        f"use a managed identity: {name}__credential=managedidentity and, for a "
        f"user-assigned one, {name}__clientId=<its client id>"
    )
    if identity.kind == "client_secret":
        raise ConfigurationError(
            connection.setting("clientSecret"),
            "the blob trigger's SDK binding signs in only with a managed identity, never with "
            f"a service principal; {instead} (or a connection string locally)",
        )
    if identity.resource_id or identity.object_id:
        prop = "managedIdentityResourceId" if identity.resource_id else "managedIdentityObjectId"
        raise ConfigurationError(
            connection.setting(prop),
            "the blob trigger's SDK binding ignores it and would use the system-assigned "
            f"identity: set {name}__clientId to the user-assigned identity's client id instead",
        )
    if identity.kind == "default" and identity.client_id:
        raise ConfigurationError(
            connection.setting("clientId"),
            f"without {name}__credential=managedidentity the blob trigger's SDK binding "
            f"ignores it and uses the system-assigned identity: set {name}__credential="
            "managedidentity too",
        )


def identity_for_speech(env: Mapping[str, str], storage_connection: str) -> IdentityOptions:
    """The identity the Speech client signs in with (when SPEECH_KEY is empty).

    1. ``AZURE_CLIENT_ID`` (the azure-identity convention; the azd template sets it):
       DefaultAzureCredential with that user-assigned managed identity.
    2. Else the identity of the storage connection named `storage_connection` (e.g.
       ``__credential=managedidentity`` + ``__clientId``, as the Flex Consumption
       quickstart sets): the identity the app already uses for its data.
    3. Else DefaultAzureCredential: the system-assigned identity in Azure, your sign-in
       locally.

    A storage connection that cannot be parsed counts as none here: the settings check
    reports it, naming the setting.
    """
    client_id = env.get("AZURE_CLIENT_ID", "").strip()
    if client_id:
        return IdentityOptions("default", client_id=client_id, source="AZURE_CLIENT_ID")
    try:
        storage = parse_connection(storage_connection, env)
    except ConfigurationError:
        return DEFAULT_IDENTITY
    if storage.uses_identity and storage.identity is not None:
        return storage.identity
    return DEFAULT_IDENTITY


# --------------------------------------------------------------------------- helpers


def _value(env: Mapping[str, str], key: str) -> str:
    raw = env.get(key)
    return raw.strip() if isinstance(raw, str) else ""


def _properties(name: str, env: Mapping[str, str]) -> dict[str, str]:
    """Lowercase property -> the setting holding it ("" -> the bare connection name).

    Case-insensitive, as the host's configuration is; an exactly spelled key wins.
    """
    prefix = f"{name}__".lower()
    found: dict[str, str] = {}
    for key in env:
        lowered = key.lower()
        if lowered == name.lower():
            prop = ""
        elif lowered.startswith(prefix):
            prop = lowered[len(prefix) :]
        else:
            continue
        exact = key == name if not prop else key == f"{name}__{_PROPERTIES.get(prop, prop)}"
        if prop not in found or exact:
            found[prop] = key
    return found


def _missing_message(name: str, props: Mapping[str, str], values: Mapping[str, str]) -> str:
    return (
        "missing: set it to a storage connection string (UseDevelopmentStorage=true for "
        f"Azurite), or use identity-based settings {name}__blobServiceUri, "
        f"{name}__queueServiceUri and {name}__tableServiceUri" + _unknown_note_from(props, values)
    )


def _unknown_note(connection: StorageConnection) -> str:
    unknown = [key for prop, key in connection.settings.items() if prop and prop not in _PROPERTIES]
    return _unknown_list(unknown)


def _unknown_note_from(props: Mapping[str, str], values: Mapping[str, str]) -> str:
    unknown = [props[p] for p in values if p not in _PROPERTIES]
    return _unknown_list(unknown)


def _unknown_list(unknown: list[str]) -> str:
    if not unknown:
        return ""
    return f" (found {', '.join(sorted(unknown))}: not a property the Functions host reads)"


def _service_uris(name: str, props: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    uris: dict[str, str] = {}
    account = values.get("accountname", "")
    if account:
        if name != HOST_CONNECTION:
            raise ConfigurationError(
                props["accountname"],
                f"only AzureWebJobsStorage may use __accountName (the host and the blob "
                f"trigger refuse it elsewhere): set {name}__blobServiceUri="
                f"https://{account}.blob.core.windows.net, {name}__queueServiceUri and "
                f"{name}__tableServiceUri instead",
            )
        if not _ACCOUNT_NAME.match(account):
            raise ConfigurationError(
                props["accountname"],
                "expected a storage account name (3-24 lowercase letters and digits), "
                f"got {account!r}",
            )
        uris = {s: f"https://{account}.{s}.core.windows.net" for s in SERVICES}
    for service in SERVICES:
        prop = f"{service}serviceuri"
        if prop in values:
            uri = values[prop]
            _check_https(props[prop], uri, f"<account>.{service}.core.windows.net")
            uris[service] = uri
    return uris


def _check_https(setting: str, uri: str, example: str) -> None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = None
    if parts is None or not parts.netloc or parts.scheme not in ("http", "https"):
        raise ConfigurationError(setting, f"expected a URL like https://{example}, got {uri!r}")
    if parts.scheme != "https":
        raise ConfigurationError(
            setting,
            f"expected an https URL (Microsoft Entra tokens are only sent over https), e.g. "
            f"https://{example}; got {uri!r}. For Azurite use a connection string",
        )
    if parts.query:
        raise ConfigurationError(
            setting, "expected the service endpoint without a query string (no SAS)"
        )


def _same_uri(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _identity(name: str, props: Mapping[str, str], values: Mapping[str, str]) -> IdentityOptions:
    def setting(prop: str) -> str:
        return props.get(prop, f"{name}__{_PROPERTIES.get(prop, prop)}")

    credential = values.get("credential", "")
    client_id = values.get("clientid", "")
    resource_id = values.get("managedidentityresourceid", "")
    object_id = values.get("managedidentityobjectid", "")
    tenant_id = values.get("tenantid", "")
    secret = values.get("clientsecret", "")
    if "clientcertificate" in values:
        raise ConfigurationError(
            setting("clientcertificate"),
            "a certificate from the Windows certificate store cannot be used here: use "
            f"{name}__tenantId, __clientId and __clientSecret locally, or a managed identity",
        )
    if credential:
        if credential.lower() != "managedidentity":
            raise ConfigurationError(
                setting("credential"),
                f"expected managedidentity, got {credential!r} (federated and workload "
                "identities are not supported); leave it unset to use your own sign-in locally",
            )
        chosen = [
            p
            for p in ("clientid", "managedidentityresourceid", "managedidentityobjectid")
            if values.get(p)
        ]
        if len(chosen) > 1:
            raise ConfigurationError(
                setting(chosen[1]),
                f"set only one of {', '.join(setting(p) for p in chosen)}: each names the "
                "user-assigned identity",
            )
        if secret:
            raise ConfigurationError(
                setting("clientsecret"),
                f"is not used with {setting('credential')}=managedidentity: delete it",
            )
        return IdentityOptions(
            "managed_identity",
            client_id=client_id,
            resource_id=resource_id,
            object_id=object_id,
            source=setting(chosen[0]) if chosen else setting("credential"),
        )
    if secret or tenant_id:
        for prop, value in (
            ("tenantid", tenant_id),
            ("clientid", client_id),
            ("clientsecret", secret),
        ):
            if not value:
                raise ConfigurationError(
                    setting(prop),
                    "missing: a service principal needs "
                    f"{name}__tenantId, {name}__clientId and {name}__clientSecret (local "
                    "development only; in Azure use a managed identity)",
                )
        return IdentityOptions(
            "client_secret",
            client_id=client_id,
            tenant_id=tenant_id,
            client_secret=Secret(secret),
            source=setting("clientsecret"),
        )
    for prop in ("managedidentityresourceid", "managedidentityobjectid"):
        if values.get(prop):
            raise ConfigurationError(
                setting(prop),
                f"is used only with {name}__credential=managedidentity: set that too",
            )
    return IdentityOptions(
        "default", client_id=client_id, source=setting("clientid") if client_id else ""
    )
