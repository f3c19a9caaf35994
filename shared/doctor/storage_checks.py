"""The doctor's Storage checks: each connection resolves, and what the app uses works.

``storage.connection``  STORAGE_CONNECTION parses (`shared.storage_connection`) and its
                        clients can be built; which account and identity it uses
``storage.containers``  the input container can be read; the output and error containers
                        take a write (a probe blob under ``_doctor/``, deleted at once; never
                        in the input container, whose trigger would pick it up)
``storage.sas``         a read-only SAS (account key or user delegation) can be issued, and
                        Storage accepts it (the probe blob is read back through it); with
                        SPEECH_STORAGE_ACCESS=identity none is needed, and none is signed
``storage.table``       the job table takes a write (a probe row, partition ``doctor``,
                        which the poller's query never selects)
``storage.queue``       the completion queue takes a message (invisible, deleted at once);
                        its depth and its poison queue's
``storage.host``        AzureWebJobsStorage, when the data lives elsewhere: it resolves and
                        answers

The first request that cannot reach the account ends the probe (one FAIL, not five
timeouts). A write refused with 403 outside Azure is a warning, not a failure: the signed-in
user typically holds reader roles (the azd template gives it Queue and Table Data Reader),
while the app's identity needs the writes; run the doctor in the app (``GET /api/doctor``)
to check the app's own rights.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from shared.doctor.context import (
    CONNECT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    DoctorContext,
    storage_options,
)
from shared.doctor.report import Check
from shared.errors import ConfigurationError, StorageTransientError
from shared.settings import Settings
from shared.storage import SasSigner, StorageClients, service_client
from shared.storage_connection import HOST_CONNECTION, StorageConnection

__all__ = ["host_storage", "storage_data"]

PROBE_PREFIX: Final = "_doctor/"
PROBE_PARTITION: Final = "doctor"
_SKIPPED: Final = "not checked: the settings are invalid (see the settings check)"


class _UnreachableError(Exception):
    """The account cannot be reached (or signed in to): the probe stops here."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.message)
        self.check = check


@dataclass(frozen=True)
class _Target:
    """What the checks talk to: the connection, its clients, and who is asking."""

    connection: StorageConnection
    clients: StorageClients
    settings: Settings
    in_azure: bool

    @property
    def account(self) -> str:
        return self.clients.blob.account_name or self.clients.blob.url

    def endpoint_setting(self, service: str) -> str:
        c = self.connection
        return c.setting(f"{service}ServiceUri") if c.uses_identity else c.name


def storage_data(ctx: DoctorContext) -> Iterator[Check]:
    """The data connection (STORAGE_CONNECTION): containers, SAS, table and queue."""
    s = ctx.settings
    if s is None:
        yield Check.skip("storage", _SKIPPED)
        return
    target = yield from _resolve(ctx, s)
    if target is None:
        return
    try:
        yield from _containers_and_sas(target)
        yield _table(target)
        yield from _queue(target)
    except _UnreachableError as stop:
        yield stop.check


def host_storage(ctx: DoctorContext) -> Iterator[Check]:
    """AzureWebJobsStorage, when STORAGE_CONNECTION names another account."""
    s = ctx.settings
    if s is None or s.storage_connection == HOST_CONNECTION:
        return
    name = HOST_CONNECTION
    try:
        connection = ctx.connection(name)
        connection.require_services(("blob", "queue"), used_for="the Functions host")
        blob = service_client(BlobServiceClient, connection, "blob", **storage_options())
        next(iter(blob.list_containers(results_per_page=1)), None)
    except ConfigurationError as exc:
        yield Check.fail("storage.host", exc.problem, setting=exc.setting, fix=_see_settings())
    except (AzureError, ValueError) as exc:
        yield Check.fail(
            "storage.host",
            f"{name} does not answer: {_brief(exc)}",
            setting=name,
            fix="the Functions host keeps its state there: check the account and its roles",
        )
    else:
        yield Check.ok("storage.host", f"{name} answers ({_kind(connection)})")


# --------------------------------------------------------------------------- steps


def _resolve(ctx: DoctorContext, s: Settings) -> Generator[Check, None, _Target | None]:
    """``storage.connection``; returns the target (None when it cannot be built)."""
    name = s.storage_connection
    try:
        connection = ctx.connection(name)
        clients = ctx.storage_clients_of(connection)
    except ConfigurationError as exc:
        yield Check.fail(
            "storage.connection", exc.problem, setting=exc.setting, fix=_see_settings()
        )
        return None
    except ValueError:
        # The SDK's "connection string is either blank or malformed" (never quote it).
        yield Check.fail(
            "storage.connection",
            f"{name} is not a valid storage connection string",
            setting=name,
            fix="copy the account's connection string (Access keys), or use "
            f"UseDevelopmentStorage=true for Azurite, or {name}__blobServiceUri etc. with an "
            "identity",
        )
        return None
    target = _Target(connection, clients, s, ctx.in_azure)
    yield Check.ok("storage.connection", f"{name}: account {target.account}, {_kind(connection)}")
    return target


def _containers_and_sas(t: _Target) -> Iterator[Check]:
    """One ``storage.containers`` line (missing ones together), then ``storage.sas``."""
    s = t.settings
    blob = t.clients.blob
    missing: list[tuple[str, str]] = []  # (setting, container)
    try:
        blob.get_container_client(s.input_container).get_container_properties()
    except ResourceNotFoundError:
        missing.append(("INPUT_CONTAINER", s.input_container))
    except AzureError as exc:
        raise _UnreachableError(_failure(t, "blob", f"read {s.input_container}", exc)) from None
    failures: list[Check] = []
    sas: Check | None = None
    for env, container in (
        ("OUTPUT_CONTAINER", s.output_container),
        ("ERROR_CONTAINER", s.error_container),
    ):
        probe = blob.get_blob_client(container, f"{PROBE_PREFIX}{uuid.uuid4().hex}.txt")
        try:
            probe.upload_blob(b"doctor", overwrite=True)
        except ResourceNotFoundError:
            missing.append((env, container))
            continue
        except AzureError as exc:
            failures.append(_write_failure(t, "blob", f"write to {container}", exc, env))
            continue
        try:
            if env == "OUTPUT_CONTAINER" and s.speech_storage_access == "identity":
                sas = Check.skip(
                    "storage.sas",
                    "not needed: SPEECH_STORAGE_ACCESS=identity, Speech reads plain URLs with "
                    "its own identity and the app signs no SAS (see speech.storage)",
                )
            elif env == "OUTPUT_CONTAINER":
                sas = _sas(t, probe.container_name, probe.blob_name)
        finally:
            with contextlib.suppress(AzureError):
                probe.delete_blob()
    if missing:
        yield Check.warn(
            "storage.containers",
            f"{', '.join(c for _, c in missing)}: not created yet",
            setting=", ".join(e for e, _ in missing),
            fix="create them (the app also creates them when a function first runs)",
        )
    yield from failures
    if not missing and not failures:
        yield Check.ok(
            "storage.containers",
            f"{s.input_container} readable; {s.output_container}, {s.error_container} writable",
        )
    yield sas or Check.skip("storage.sas", "not checked: needs a writable output container")


def _sas(t: _Target, container: str, name: str) -> Check:
    now = datetime.now(UTC)
    kind = "user-delegation" if t.connection.uses_identity else "account-key"
    try:
        url = SasSigner(t.clients.blob).read_url(
            container, name, now=now, validity=timedelta(minutes=5)
        )
    except (StorageTransientError, AzureError) as exc:
        return Check.fail(
            "storage.sas",
            f"cannot issue a {kind} SAS: {_brief(exc)}",
            setting=t.connection.name,
            fix="the identity needs 'Storage Blob Delegator' (included in Storage Blob Data "
            "Contributor/Owner) to sign user-delegation SAS",
        )
    except ConfigurationError as exc:
        return Check.fail("storage.sas", exc.problem, setting=exc.setting)
    try:
        response = httpx.get(
            url, timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        )
    except httpx.HTTPError as exc:
        return Check.fail(
            "storage.sas",
            f"the SAS URL does not answer ({type(exc).__name__})",
            setting=t.connection.name,
        )
    if response.status_code != 200:
        return Check.fail(
            "storage.sas",
            f"Storage refused the {kind} SAS it should accept (HTTP {response.status_code})",
            setting=t.connection.name,
            fix="check the account's SAS and shared-key settings; Speech reads recordings "
            "through such a SAS",
        )
    return Check.ok("storage.sas", f"{kind} SAS issued and accepted")


def _table(t: _Target) -> Check:
    table = t.clients.table_client(t.settings.jobs_table)
    entity = {"PartitionKey": PROBE_PARTITION, "RowKey": uuid.uuid4().hex}
    try:
        table.upsert_entity(entity)
    except ResourceNotFoundError:
        return Check.warn(
            "storage.table",
            f"the table {t.settings.jobs_table} does not exist yet",
            setting="JOBS_TABLE",
            fix="create it (the app also creates it when a function first runs)",
        )
    except AzureError as exc:
        return _write_failure(t, "table", f"write to {t.settings.jobs_table}", exc, "JOBS_TABLE")
    with contextlib.suppress(AzureError):
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    return Check.ok("storage.table", f"{t.settings.jobs_table} writable")


def _queue(t: _Target) -> Iterator[Check]:
    name = t.settings.completion_queue
    queue = t.clients.base64_queue(name)
    try:
        depth = queue.get_queue_properties().approximate_message_count
    except ResourceNotFoundError:
        yield Check.warn(
            "storage.queue",
            f"the queue {name} does not exist yet",
            setting="COMPLETION_QUEUE",
            fix="create it (the app also creates it when a function first runs)",
        )
        return
    except AzureError as exc:
        raise _UnreachableError(_failure(t, "queue", f"read {name}", exc)) from None
    poison = 0
    with contextlib.suppress(AzureError):
        poison_queue = t.clients.base64_queue(f"{name}-poison")
        poison = poison_queue.get_queue_properties().approximate_message_count or 0
    try:
        # Invisible for a minute and deleted at once: the queue trigger never sees it (and
        # would drop it as malformed if it did).
        sent = queue.send_message('{"doctor": "probe"}', visibility_timeout=60)
        queue.delete_message(sent.id, sent.pop_receipt)
    except AzureError as exc:
        yield _write_failure(t, "queue", f"send to {name}", exc, "COMPLETION_QUEUE")
        return
    counts = f"{depth} message(s) waiting, {poison} in {name}-poison"
    if poison:
        yield Check.warn(
            "storage.queue",
            f"{name} writable; {counts}",
            fix="the hourly sweep re-drives poison messages; see docs/operations.md",
        )
    else:
        yield Check.ok("storage.queue", f"{name} writable; {counts}")


# --------------------------------------------------------------------------- errors


def _failure(t: _Target, service: str, action: str, exc: Exception) -> Check:
    """A failed first read: unreachable, not signed in, or refused."""
    setting = t.endpoint_setting(service)
    identity = t.connection.identity
    who = identity.describe() if (t.connection.uses_identity and identity) else "the account key"
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Check.fail(
            f"storage.{service}",
            f"cannot {action}: the {service} endpoint of {t.account} does not answer "
            f"({type(exc).__name__})",
            setting=setting,
            fix="check the endpoint and that this network may reach the account (firewall, "
            "private endpoints)",
        )
    if isinstance(exc, ClientAuthenticationError) and not isinstance(exc, HttpResponseError):
        return Check.fail(
            f"storage.{service}",
            f"cannot {action}: no Microsoft Entra token for {who}",
            setting=setting,
            fix="in Azure, check the identity settings; locally, `az login`",
        )
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    return Check.fail(
        f"storage.{service}",
        f"cannot {action}: Storage answered HTTP {status} {code or ''}".rstrip(),
        setting=setting if status != 403 else t.connection.name,
        fix=_refused_fix(service, who) if status == 403 else "",
    )


def _write_failure(t: _Target, service: str, action: str, exc: Exception, env: str) -> Check:
    if isinstance(exc, HttpResponseError) and exc.status_code == 403 and not t.in_azure:
        return Check.warn(
            f"storage.{service}",
            f"cannot {action} with your sign-in (HTTP 403); the app's identity needs that right",
            setting=env,
            fix="run the doctor in the app (GET /api/doctor with the admin key) to check the "
            "app's own rights",
        )
    return _failure(t, service, action, exc)


def _refused_fix(service: str, who: str) -> str:
    role = {"blob": "Blob Data Contributor", "queue": "Queue Data Contributor"}.get(
        service, "Table Data Contributor"
    )
    return f"grant {who} 'Storage {role}' on the account (or check the account key)"


def _kind(connection: StorageConnection) -> str:
    if not connection.uses_identity:
        return "connection string"
    identity = connection.identity
    return f"identity-based, {identity.describe() if identity else 'default credential'}"


def _brief(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _see_settings() -> str:
    return "see docs/settings.md (storage connections)"
