"""Batch records in the job table's own partition: conditional writes, one active query.

Row layout: PartitionKey ``batch``, RowKey = the batch key, one property per `BatchRecord`
field plus ``Active``. The member keys (up to 1,000 of 43 characters) do not fit one string
property (32K characters), so they are written in chunks ``Members0``, ``Members1``, ...
Every update is a full replace conditional on the ETag (`JobConflictError` on a lost race).
`to_entity` / `from_entity` are pure; `BatchStore` is the thin adapter over `TableClient`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.batches import BatchRecord, BatchState, describe_batch
from shared.errors import JobConflictError
from shared.storage import storage_errors

log = logging.getLogger(__name__)

__all__ = ["BATCH_PARTITION", "BatchStore", "from_entity", "to_entity"]

BATCH_PARTITION: Final = "batch"
_ACTIVE_FILTER: Final = "PartitionKey eq 'batch' and Active eq true"
_KEYS_PER_CHUNK: Final = 600  # 600 x 44 characters stays under a string property's 32K
_PROPS: Final = {
    "state": "State",
    "channels": "Channels",
    "created": "Created",
    "updated": "Updated",
    "deadline": "Deadline",
    "next_check_at": "NextCheckAt",
    "transcription_id": "TranscriptionId",
    "transcription_url": "TranscriptionUrl",
    "service_status": "ServiceStatus",
    "submitted_at": "SubmittedAt",
    "finished_at": "FinishedAt",
    "error_code": "ErrorCode",
    "error_message": "ErrorMessage",
}
_TIMES: Final = ("created", "updated", "deadline", "next_check_at", "submitted_at", "finished_at")


def to_entity(batch: BatchRecord) -> dict[str, Any]:
    """The Table entity for `batch`."""
    entity: dict[str, Any] = {
        "PartitionKey": BATCH_PARTITION,
        "RowKey": batch.key,
        "Active": batch.is_active,
        "MemberCount": len(batch.members),
    }
    for field, prop in _PROPS.items():
        value = getattr(batch, field)
        if value is None:
            continue
        entity[prop] = value.value if isinstance(value, BatchState) else value
    for i in range(0, len(batch.members), _KEYS_PER_CHUNK):
        entity[f"Members{i // _KEYS_PER_CHUNK}"] = ",".join(batch.members[i : i + _KEYS_PER_CHUNK])
    return entity


def from_entity(entity: Mapping[str, Any], etag: str | None = None) -> BatchRecord:
    """The `BatchRecord` a Table entity holds; `etag` becomes its `version`."""
    values: dict[str, Any] = {}
    for field, prop in _PROPS.items():
        value = entity.get(prop)
        if value is None:
            continue
        if field in _TIMES:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        elif field == "state":
            value = BatchState(value)
        elif field == "channels":
            value = int(value)
        values[field] = value
    members: list[str] = []
    chunk = 0
    while f"Members{chunk}" in entity:
        members.extend(k for k in str(entity[f"Members{chunk}"]).split(",") if k)
        chunk += 1
    if len(members) != int(entity.get("MemberCount", len(members))):
        raise ValueError(f"batch {entity.get('RowKey')}: member list is incomplete")
    return BatchRecord(key=str(entity["RowKey"]), members=tuple(members), version=etag, **values)


def _etag_of(entity: Mapping[str, Any]) -> str | None:
    metadata = getattr(entity, "metadata", None)
    if isinstance(metadata, Mapping) and metadata.get("etag") is not None:
        return str(metadata["etag"])
    return None


def _versioned(batch: BatchRecord, meta: Mapping[str, Any]) -> BatchRecord:
    etag = meta.get("etag")
    return dataclasses.replace(batch, version=str(etag) if etag is not None else None)


class BatchStore:
    """Batch records in the jobs table. Storage failures surface as `StorageTransientError`."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def create(self, batch: BatchRecord) -> BatchRecord | None:
        """Insert a new batch; None when one with this key exists already."""
        try:
            with storage_errors("create batch"):
                meta = self._table.create_entity(to_entity(batch))
        except ResourceExistsError:
            return None
        log.info("%s: created (%s)", describe_batch(batch), batch.state)
        return _versioned(batch, meta)

    def get(self, key: str) -> BatchRecord | None:
        """The batch with `key`, or None."""
        try:
            with storage_errors("read batch"):
                entity = self._table.get_entity(BATCH_PARTITION, key)
        except ResourceNotFoundError:
            return None
        return from_entity(entity, _etag_of(entity))

    def save(self, previous: BatchRecord, batch: BatchRecord) -> BatchRecord:
        """Write `batch` if the row is still at `previous.version`, else `JobConflictError`."""
        if previous.version is None:
            raise ValueError(f"{describe_batch(previous)}: cannot update a batch never read")
        try:
            with storage_errors("update batch"):
                meta = self._table.update_entity(
                    to_entity(batch),
                    mode=UpdateMode.REPLACE,
                    etag=previous.version,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise JobConflictError(
                f"{describe_batch(batch)}: changed by another run "
                f"(wanted {previous.state} -> {batch.state})"
            ) from exc
        if previous.state != batch.state:
            log.info("%s: %s -> %s", describe_batch(batch), previous.state, batch.state)
        return _versioned(batch, meta)

    def active(self) -> list[BatchRecord]:
        """Every batch not done yet (one paged query)."""
        batches: list[BatchRecord] = []
        with storage_errors("query active batches"):
            for entity in self._table.query_entities(_ACTIVE_FILTER, results_per_page=1000):
                try:
                    batches.append(from_entity(entity, _etag_of(entity)))
                except (KeyError, TypeError, ValueError) as exc:
                    log.error("batch=%s: unreadable row skipped: %r", entity.get("RowKey"), exc)
        return batches
