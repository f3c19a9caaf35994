"""Job records in Azure Table storage: conditional writes, one query for the active set.

Row layout: PartitionKey ``job`` (one partition, so the poller's active-set query is one
filtered query, ``Active eq true``, with no fan-out), RowKey = the job key, one property
per `JobRecord` field plus ``Active``. Every update is a full replace conditional on the
ETag the record was read with: losing a race raises `JobConflictError`, and the caller
re-reads instead of overwriting someone else's progress.

`to_entity` / `from_entity` are pure; `JobStore` is the thin adapter over `TableClient`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

from shared import job_history
from shared.errors import JobConflictError
from shared.jobs import JobRecord, JobState, describe
from shared.storage import storage_errors

log = logging.getLogger(__name__)

PARTITION: Final = "job"
ACTIVE_FILTER: Final = "PartitionKey eq 'job' and Active eq true"
QUEUED_FILTER: Final = "PartitionKey eq 'job' and State eq 'queued'"

_DATETIME_FIELDS: Final = (
    "created",
    "updated",
    "deadline",
    "next_check_at",
    "submitted_at",
    "checked_at",
    "finished_at",
)
# JobRecord field -> Table property name (PascalCase reads well in Storage Explorer).
_PROPS: Final = {
    "state": "State",
    "container": "Container",
    "blob_name": "BlobName",
    "blob_etag": "BlobETag",
    "blob_size": "BlobSize",
    "created": "Created",
    "updated": "Updated",
    "deadline": "Deadline",
    "next_check_at": "NextCheckAt",
    "attempts": "Attempts",
    "channels": "Channels",
    "audio_format": "AudioFormat",
    "duration_s": "DurationSeconds",
    "transcription_id": "TranscriptionId",
    "transcription_url": "TranscriptionUrl",
    "service_status": "ServiceStatus",
    "submitted_at": "SubmittedAt",
    "checked_at": "CheckedAt",
    "finished_at": "FinishedAt",
    "error_code": "ErrorCode",
    "error_message": "ErrorMessage",
    "needs_lookup": "NeedsLookup",
    "outputs_written": "OutputsWritten",
    "batch_key": "BatchKey",
}
_INT_FIELDS: Final = ("blob_size", "attempts", "channels")
_HISTORY: Final = "History"

# Told about every state change the store wrote: (the record before, or None for a new job;
# the record written). `shared.ops.recorder` keeps the list index and hourly counters with it.
ChangeObserver = Callable[[JobRecord | None, JobRecord], None]
_MAX_STRING = 30_000  # a Table string property holds 64 KiB (32K UTF-16 characters)


def to_entity(record: JobRecord) -> dict[str, Any]:
    """The Table entity for `record` (None fields are left out; an update then removes them)."""
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": record.key,
        "Active": record.is_active,
    }
    for field, prop in _PROPS.items():
        value = getattr(record, field)
        if value is None:
            continue
        if isinstance(value, JobState):
            value = value.value
        elif field == "blob_size":
            # Edm.Int32 tops out at 2 GiB; blob sizes are written as Int64 explicitly.
            value = int(value)
        elif isinstance(value, str) and len(value) > _MAX_STRING:
            value = value[:_MAX_STRING]
        entity[prop] = value
    if record.history:
        entity[_HISTORY] = job_history.encode(record.history)
    return entity


def from_entity(entity: Mapping[str, Any], etag: str | None = None) -> JobRecord:
    """The `JobRecord` a Table entity holds; `etag` becomes its `version`."""
    values: dict[str, Any] = {}
    for field, prop in _PROPS.items():
        if prop not in entity or entity[prop] is None:
            continue
        value = entity[prop]
        if isinstance(value, EntityProperty):  # Int64 values come back wrapped
            value = value.value
        if field in _DATETIME_FIELDS:
            value = _utc(value)
        elif field in _INT_FIELDS:
            value = int(value)
        elif field == "duration_s":
            value = float(value)
        elif field == "state":
            value = JobState(value)
        values[field] = value
    history = job_history.decode(entity.get(_HISTORY))
    return JobRecord(key=str(entity["RowKey"]), version=etag, history=history, **values)


def _utc(value: datetime) -> datetime:
    # The SDK hands back naive or tz-aware datetimes depending on version: normalise to UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _etag_of(entity: Mapping[str, Any]) -> str | None:
    metadata = getattr(entity, "metadata", None)
    if isinstance(metadata, Mapping):
        etag = metadata.get("etag")
        return str(etag) if etag is not None else None
    return None


class JobStore:
    """Job records in one table. Storage failures surface as `StorageTransientError`."""

    def __init__(self, table: TableClient, observer: ChangeObserver | None = None) -> None:
        self._table = table
        self._observer = observer

    def observe(self, observer: ChangeObserver | None) -> None:
        """Tell `observer` about every state change written from now on (None: nobody)."""
        self._observer = observer

    def create(self, record: JobRecord) -> JobRecord | None:
        """Insert a new job; None when a job with this key already exists."""
        record = _with_transition(record)
        try:
            with storage_errors("create job"):
                meta = self._table.create_entity(_with_int64(to_entity(record)))
        except ResourceExistsError:
            return None
        log.info("%s: created in state %s", describe(record), record.state)
        created = _versioned(record, meta)
        self._notify(None, created)
        return created

    def get(self, key: str) -> JobRecord | None:
        """The job with `key`, or None."""
        try:
            with storage_errors("read job"):
                entity = self._table.get_entity(PARTITION, key)
        except ResourceNotFoundError:
            return None
        return from_entity(entity, _etag_of(entity))

    def save(self, previous: JobRecord, record: JobRecord) -> JobRecord:
        """Write `record` (a transition of `previous`) if the row is still at `previous.version`.

        Raises `JobConflictError` when another run changed the row first (or deleted it).
        """
        if previous.version is None:
            raise ValueError(f"{describe(previous)}: cannot update a record that was never read")
        changed = previous.state != record.state
        if changed:
            record = _with_transition(record)
        try:
            with storage_errors("update job"):
                meta = self._table.update_entity(
                    _with_int64(to_entity(record)),
                    mode=UpdateMode.REPLACE,
                    etag=previous.version,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise JobConflictError(
                f"{describe(record)}: changed by another run (wanted {previous.state} -> "
                f"{record.state})"
            ) from exc
        saved = _versioned(record, meta)
        if changed:
            log.info("%s: %s -> %s", describe(record), previous.state, record.state)
            self._notify(previous, saved)
        else:
            log.debug("%s: updated in state %s", describe(record), record.state)
        return saved

    def _notify(self, previous: JobRecord | None, record: JobRecord) -> None:
        # Bookkeeping for the operator view must never fail the job: the write above is what
        # counts, and `python -m shared.ops reindex` rebuilds whatever an observer missed.
        if self._observer is None:
            return
        try:
            self._observer(previous, record)
        except Exception as exc:  # noqa: BLE001 - any failure here is only logged
            log.warning(
                "%s: operator-view bookkeeping failed (%r); the job is unaffected, run "
                "`python -m shared.ops reindex` to rebuild the stats",
                describe(record),
                exc,
            )

    def active(self) -> list[JobRecord]:
        """Every job that still needs work, in one (paged) table query.

        A row this version cannot read (edited by hand, written by a future version) is
        skipped with an error in the log rather than stopping every other job.
        """
        records: list[JobRecord] = []
        with storage_errors("query active jobs"):
            for entity in self._table.query_entities(ACTIVE_FILTER, results_per_page=1000):
                try:
                    records.append(from_entity(entity, _etag_of(entity)))
                except (KeyError, TypeError, ValueError) as exc:
                    log.error("job=%s: unreadable job row skipped: %r", entity.get("RowKey"), exc)
        return records

    def queued(self, limit: int) -> list[JobRecord]:
        """Up to `limit` jobs waiting to be batched (one filtered, paged query)."""
        records: list[JobRecord] = []
        with storage_errors("query queued jobs"):
            for entity in self._table.query_entities(QUEUED_FILTER, results_per_page=1000):
                try:
                    records.append(from_entity(entity, _etag_of(entity)))
                except (KeyError, TypeError, ValueError) as exc:
                    log.error("job=%s: unreadable job row skipped: %r", entity.get("RowKey"), exc)
                if len(records) >= limit:
                    break
        return records


def _with_transition(record: JobRecord) -> JobRecord:
    entry = job_history.Transition(record.state.value, record.updated, record.error_code)
    return dataclasses.replace(record, history=job_history.append(record.history, entry))


def _with_int64(entity: dict[str, Any]) -> dict[str, Any]:
    if "BlobSize" in entity:
        entity["BlobSize"] = EntityProperty(entity["BlobSize"], EdmType.INT64)
    return entity


def _versioned(record: JobRecord, meta: Mapping[str, Any]) -> JobRecord:
    etag = meta.get("etag")
    return dataclasses.replace(record, version=str(etag) if etag is not None else None)
