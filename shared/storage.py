"""Storage access for the app: clients from the connection setting, SAS, resources, blob I/O.

The connection is the app setting named by ``STORAGE_CONNECTION`` (default
``AzureWebJobsStorage``), read as the Functions host reads it by
`shared.storage_connection.parse_connection`: a connection string, or identity-based
settings ``<NAME>__blobServiceUri`` / ``__queueServiceUri`` / ``__tableServiceUri`` (or
``AzureWebJobsStorage__accountName``) with the identity ``__credential`` / ``__clientId``
/ ... choose (`shared.credentials`). With a key the app signs account-key SAS; with an
identity it signs user-delegation SAS (the identity needs Storage Blob Delegator, which
Storage Blob Data Contributor includes).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
)
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.credentials import build_credential
from shared.errors import ConfigurationError, StorageTransientError
from shared.storage_connection import (
    DATA_USE,
    DEFAULT_IDENTITY,
    SERVICES,
    Service,
    StorageConnection,
    parse_connection,
)
from shared.storage_transport import TRANSPORT_OPTIONS, pooled_transport

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.settings import Settings

log = logging.getLogger(__name__)

# SAS validity starts a little in the past: clocks of Storage and this host may differ.
_CLOCK_SKEW: Final = timedelta(minutes=5)
# A user-delegation key is reused while it stays valid this much longer than the SAS needs.
_DELEGATION_KEY_LIFETIME: Final = timedelta(hours=24)


@contextlib.contextmanager
def storage_errors(operation: str) -> Iterator[None]:
    """Turn Storage's 429/5xx and connection failures into `StorageTransientError`.

    Other errors (not found, exists, precondition failed...) pass through unchanged for the
    caller to handle; the SDK has already retried transient ones by the time they get here.
    """
    try:
        yield
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status == 429 or status >= 500:
            raise StorageTransientError(f"{operation}: Storage answered HTTP {status}") from exc
        raise
    except AzureError as exc:
        if isinstance(exc, HttpResponseError):  # pragma: no cover - handled above
            raise
        raise StorageTransientError(
            f"{operation}: Storage unreachable ({type(exc).__name__})"
        ) from exc


@dataclass(frozen=True)
class StorageClients:
    """The three service clients of one storage account (sync, thread-safe)."""

    blob: BlobServiceClient
    queue: QueueServiceClient
    table: TableServiceClient

    @classmethod
    def from_setting(cls, env: Mapping[str, str], name: str, **options: Any) -> StorageClients:
        """Clients for the connection named `name` (a connection string or identity settings).

        `options` go to every client (e.g. ``retry_total``, ``connection_timeout``).
        Raises `ConfigurationError` naming the setting when the connection cannot work.
        """
        connection = parse_connection(name, env)
        connection.require_services(SERVICES, used_for=DATA_USE)
        return cls.from_connection(connection, **options)

    @classmethod
    def from_connection(cls, connection: StorageConnection, **options: Any) -> StorageClients:
        """Clients for a parsed connection that has all three endpoints (one credential)."""
        credential = connection_credential(connection)
        return cls(
            blob=_client(BlobServiceClient, connection, "blob", credential, options),
            queue=_client(QueueServiceClient, connection, "queue", credential, options),
            table=_client(TableServiceClient, connection, "table", credential, options),
        )

    def blob_client(self, container: str, name: str) -> BlobClient:
        """A client for one blob; the SDK quotes the name (spaces, #, %, ?, Unicode)."""
        return self.blob.get_blob_client(container, name)

    def table_client(self, table: str) -> TableClient:
        """A client for one table."""
        return self.table.get_table_client(table)

    def base64_queue(self, queue: str) -> QueueClient:
        """A queue client whose messages the Functions host can read (base64 text)."""
        return self.queue.get_queue_client(
            queue,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )


def connection_credential(connection: StorageConnection) -> TokenCredential | None:
    """The credential of an identity-based connection; None with a connection string."""
    if not connection.uses_identity:
        return None
    return build_credential(connection.identity or DEFAULT_IDENTITY)


def blob_service_from_setting(
    env: Mapping[str, str], name: str, **options: Any
) -> BlobServiceClient:
    """The Blob service client of the connection named `name`, for a connection that only
    reads blobs (SPEECH_RESULTS_CONNECTION): it needs no queue or table endpoint, and its
    blob endpoint may be ``__blobServiceUri`` or ``__serviceUri``."""
    return service_client(BlobServiceClient, parse_connection(name, env), "blob", **options)


_Client = TypeVar("_Client", BlobServiceClient, QueueServiceClient, TableServiceClient)


def _pooled(options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` with a transport of its own for one client (unless one was given); the
    options that configure a transport go into it (the client would ignore them)."""
    if "transport" in options:
        return dict(options)
    transport_options = {k: v for k, v in options.items() if k in TRANSPORT_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in TRANSPORT_OPTIONS}
    return {"transport": pooled_transport(**transport_options), **rest}


def service_client(
    cls: type[_Client], connection: StorageConnection, service: Service, **options: Any
) -> _Client:
    """One service's client for `connection` as a single-service binding reads it
    (``__<service>ServiceUri``, else ``__serviceUri``); `ConfigurationError` when it has no
    endpoint for `service`."""
    return _client(cls, connection, service, connection_credential(connection), options)


def _client(
    cls: type[_Client],
    connection: StorageConnection,
    service: Service,
    credential: TokenCredential | None,
    options: Mapping[str, Any],
) -> _Client:
    options = _pooled(options)  # every client gets its own wide connection pool
    if not connection.uses_identity:
        return cls.from_connection_string(connection.connection_string.reveal(), **options)
    uri = connection.uri_for(service)
    if uri is None:
        connection.require_services([service], used_for=f"{service} storage")
        raise AssertionError("unreachable: require_services raises")  # pragma: no cover
    return cls(uri, credential=credential, **options)


_ensured: set[tuple[str, ...]] = set()
_ensured_lock = threading.Lock()


def ensure_resources(clients: StorageClients, settings: Settings) -> None:
    """Create the containers, table and queues the app uses when missing: once per process."""
    wanted = (
        settings.storage_connection,
        settings.input_container,
        settings.output_container,
        settings.error_container,
        settings.jobs_table,
        settings.completion_queue,
        id(clients).__str__(),
    )
    with _ensured_lock:
        if wanted in _ensured:
            return
        with storage_errors("create containers, table and queues"):
            for container in (
                settings.input_container,
                settings.output_container,
                settings.error_container,
            ):
                with contextlib.suppress(ResourceExistsError):
                    clients.blob.create_container(container)
            clients.table.create_table_if_not_exists(settings.jobs_table)
            for queue in (settings.completion_queue, f"{settings.completion_queue}-poison"):
                with contextlib.suppress(ResourceExistsError):
                    clients.queue.create_queue(queue)
        _ensured.add(wanted)
        log.info(
            "storage ready: containers %s, %s, %s; table %s; queue %s",
            settings.input_container,
            settings.output_container,
            settings.error_container,
            settings.jobs_table,
            settings.completion_queue,
        )


class SasSigner:
    """Read-only SAS URLs for single blobs: account key when there is one, else delegation."""

    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_expiry: datetime | None = None
        self._lock = threading.Lock()

    def read_url(self, container: str, name: str, *, now: datetime, validity: timedelta) -> str:
        """The blob's URL with a SAS allowing only `read` of this blob, until now + validity.

        The result is a secret: pass it to the Speech service, never log or store it.
        """
        blob = self._service.get_blob_client(container, name)
        expiry = now + validity
        account_name = self._service.account_name
        if account_name is None:
            raise ConfigurationError("STORAGE_CONNECTION", "the storage account name is unknown")
        key = self._account_key()
        sas_args: dict[str, Any] = {
            "account_name": account_name,
            "container_name": container,
            "blob_name": name,
            "permission": BlobSasPermissions(read=True),
            # No start time: valid at once, whatever the skew between this host and Storage.
            "expiry": expiry,
        }
        if key is not None:
            sas = generate_blob_sas(account_key=key, **sas_args)
        else:
            sas = generate_blob_sas(
                user_delegation_key=self._user_delegation_key(now, expiry), **sas_args
            )
        return f"{blob.url}?{sas}"

    def _account_key(self) -> str | None:
        credential = self._service.credential
        key = getattr(credential, "account_key", None)
        return key if isinstance(key, str) and key else None

    def _user_delegation_key(self, now: datetime, expiry: datetime) -> UserDelegationKey:
        with self._lock:
            if (
                self._delegation_key is None
                or self._delegation_expiry is None
                or self._delegation_expiry < expiry
            ):
                key_expiry = max(expiry, now + _DELEGATION_KEY_LIFETIME)
                with storage_errors("get user delegation key"):
                    self._delegation_key = self._service.get_user_delegation_key(
                        now - _CLOCK_SKEW, key_expiry
                    )
                self._delegation_expiry = key_expiry
            return self._delegation_key


def range_reader(blob: BlobClient, etag: str) -> Callable[[int, int], bytes]:
    """`read_range(offset, length)` over one blob version: ranged GETs, never the whole blob.

    Reads are pinned to `etag` (If-Match), so an overwrite in between fails loudly
    (`ResourceModifiedError`) instead of mixing two versions.
    """

    def read_range(offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        with storage_errors("read audio header"):
            return blob.download_blob(
                offset=offset,
                length=length,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            ).readall()

    return read_range


def upload(
    clients: StorageClients,
    container: str,
    name: str,
    data: bytes,
    *,
    content_type: str = "application/json; charset=utf-8",
) -> None:
    """Write (or overwrite: every writer of this app is idempotent) one blob."""
    with storage_errors(f"write {container}/{name}"):
        clients.blob_client(container, name).upload_blob(
            data,
            overwrite=True,
            content_settings=ContentSettings(content_type=content_type),
        )


def exists(clients: StorageClients, container: str, name: str) -> bool:
    """True when the blob exists."""
    with storage_errors(f"check {container}/{name}"):
        return bool(clients.blob_client(container, name).exists())
