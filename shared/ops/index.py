"""The job list index: one small row per job, newest first, in the job table's ``jobidx``
partition.

Job rows are keyed by a hash (``tj-...``), in no useful order, so listing "the newest jobs"
from them means reading them all. Each job also gets an index row whose RowKey is its
creation time counted *backwards* plus its key: the Table service returns rows in RowKey
order, so the newest come first, a ``since`` is a RowKey bound and a page is one range read.
The row carries what a list item shows (name, state, attempts, reason, times, duration), kept
up to date on every state change. Pure: keys, entity, filters, and the list item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from shared.jobs import JobRecord

__all__ = ["PARTITION", "index_entity", "index_row_key", "list_filter"]

PARTITION: Final = "jobidx"
# Milliseconds up to 2286-11-20: 13 digits keep the backwards count fixed-width.
_END_MS: Final = 10**13 - 1
_MAX_MESSAGE: Final = 2000


def _backwards(moment: datetime) -> str:
    return f"{_END_MS - int(moment.timestamp() * 1000):013d}"


def index_row_key(record: JobRecord) -> str:
    """Newest first: the creation time counted backwards, then the key (unique)."""
    return f"{_backwards(record.created)}-{record.key}"


def index_entity(record: JobRecord) -> dict[str, Any]:
    """The index row of `record` (written whole on each state change)."""
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": index_row_key(record),
        "Key": record.key,
        "Container": record.container,
        "BlobName": record.blob_name,
        "State": record.state.value,
        "Attempts": record.attempts,
        "ErrorCode": record.error_code,
        "ErrorMessage": record.error_message[:_MAX_MESSAGE],
        "Created": record.created,
    }
    if record.finished_at is not None:
        entity["FinishedAt"] = record.finished_at
    if record.duration_s is not None:
        entity["DurationSeconds"] = float(record.duration_s)
    return entity


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def list_filter(*, state: str | None, prefix: str | None, since: datetime | None) -> str:
    """The Table filter of a job list: a RowKey range for `since`, property tests for the rest.

    A `prefix` is a range on BlobName (``ge prefix and lt prefix-with-last-char+1``), which
    the service evaluates without any client-side filtering.
    """
    parts = [f"PartitionKey eq '{PARTITION}'"]
    if since is not None:
        # Created at or after `since` = counted backwards, at most since's count.
        parts.append(f"RowKey lt {_quote(_backwards(since) + '~')}")
    if state:
        parts.append(f"State eq {_quote(state)}")
    if prefix:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        parts.append(f"BlobName ge {_quote(prefix)} and BlobName lt {_quote(upper)}")
    return " and ".join(parts)


def _time(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def list_item(entity: Mapping[str, Any]) -> dict[str, Any]:
    """One job of a list, as the API returns it (`shared.ops.query` adds output locations)."""
    created = entity.get("Created")
    finished = entity.get("FinishedAt")
    duration = entity.get("DurationSeconds")
    return {
        "key": entity.get("Key"),
        "container": entity.get("Container"),
        "recording": entity.get("BlobName"),
        "state": entity.get("State"),
        "attempts": int(entity.get("Attempts") or 0),
        "reasonCode": entity.get("ErrorCode") or None,
        "reasonMessage": entity.get("ErrorMessage") or None,
        "created": _time(created),
        "finished": _time(finished),
        "audioSeconds": float(duration) if duration is not None else None,
        "turnaroundSeconds": (
            round((finished - created).total_seconds(), 3)
            if isinstance(finished, datetime) and isinstance(created, datetime)
            else None
        ),
    }
