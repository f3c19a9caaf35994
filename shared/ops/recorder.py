"""Keeps the operator view's index row and hourly counters as jobs change.

`Recorder` is the job store's change observer (`shared.job_store.ChangeObserver`): after each
state change the store wrote, it upserts the job's index row and adds the change's counts
to its hour's counter row. Each counter row is a read-modify-write conditional on its ETag,
retried a few times on a lost race; SHARDS rows per hour keep those races rare.

Index rows are written the same way: the upserts that gather while one is in flight go
in the next write as one Table transaction (all index rows share a partition).

A process adds to one shard (picked at random when it starts), and its concurrent changes
share the writes (group commit): while one thread writes the row, the deltas of the others
gather and go in the next write. A batch whose hundred recordings finish side by side so
costs a few counter writes instead of two hundred round trips, and the threads of one
process never race each other for the row's ETag.

What a failure costs: the store logs it and the job goes on (bookkeeping never fails a job).
A lost index update leaves the list showing an older state until the job's next change; a
lost counter update undercounts that hour. `python -m shared.ops reindex` rebuilds both
from the job records.

Speech requests are counted per process (`SpeechClient.request_count`) and added to the
current hour's row with the next change written, so the figure covers every request the
app made, not only those of jobs that ended (retries, polls and lookups included).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.errors import JobConflictError
from shared.jobs import JobRecord
from shared.ops import counters, index
from shared.storage import storage_errors

log = logging.getLogger(__name__)

__all__ = ["Recorder", "add_counts"]

_TRIES: Final = 8
_TRANSACTION_ROWS: Final = 100  # the Table service's limit per transaction


def add_counts(table: TableClient, hour: datetime, shard: int, delta: counters.HourCounts) -> None:
    """Add `delta` to one counter row (created when missing), conditional on its ETag."""
    key = counters.row_key(hour, shard)
    for _ in range(_TRIES):
        try:
            with storage_errors("read hourly counters"):
                entity = table.get_entity(counters.PARTITION, key)
        except ResourceNotFoundError:
            row = {"PartitionKey": counters.PARTITION, "RowKey": key, **delta.to_properties()}
            try:
                with storage_errors("create hourly counters"):
                    table.create_entity(row)
                return
            except ResourceExistsError:
                continue  # another run created it first: add to theirs
        total = counters.HourCounts.from_properties(entity)
        total.add(delta)
        row = {"PartitionKey": counters.PARTITION, "RowKey": key, **total.to_properties()}
        try:
            with storage_errors("update hourly counters"):
                table.update_entity(
                    row,
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            return
        except (ResourceModifiedError, ResourceNotFoundError):
            continue
    raise JobConflictError(f"counter row {key}: lost {_TRIES} races in a row")


@dataclass
class _Row:
    """One counter row's deltas: gathered (`pending`) and how far they have been written."""

    writer: threading.Lock = field(default_factory=threading.Lock)  # one write at a time
    pending: counters.HourCounts | None = None
    added: int = 0  # deltas added so far
    written: int = 0  # deltas durably in the row (the first `written` of `added`)


class Recorder:
    """The job store's observer: index row and hourly counters for each state change."""

    def __init__(
        self,
        table: TableClient,
        speech_requests: Callable[[], int],
        *,
        shard: int | None = None,
    ) -> None:
        self._table = table
        self._speech_requests = speech_requests
        self._counted = 0
        self._lock = threading.Lock()  # guards `_counted` and `_rows`' bookkeeping
        self._shard = secrets.randbelow(counters.SHARDS) if shard is None else shard
        self._rows: dict[datetime, _Row] = {}
        self._index = _IndexWriter(table)

    def __call__(self, previous: JobRecord | None, record: JobRecord) -> None:
        self._index.put(index.index_entity(record), record.updated)
        deltas = counters.change_delta(previous, record)
        requests = self._take_requests()
        if requests:
            hour = counters.hour_of(record.updated)
            deltas.setdefault(hour, counters.HourCounts()).speech_requests += requests
        # A delta whose write fails stays pending in its row and goes with the next write
        # for that hour (the Speech requests in it too: they are not given back).
        for hour, delta in deltas.items():
            self._add(hour, delta)

    def _add(self, hour: datetime, delta: counters.HourCounts) -> None:
        """Add `delta` to this process's row for `hour`; returns once it is written (by this
        thread, or by another that carried it in its write)."""
        with self._lock:
            row = self._rows.get(hour)
            if row is None:
                self._forget_idle_rows()
                row = self._rows[hour] = _Row()
            row.pending = _merged(row.pending, delta)
            row.added += 1
            mine = row.added
        with row.writer:
            with self._lock:
                if row.written >= mine:
                    return  # the previous write carried it
                batch, upto, row.pending = row.pending, row.added, None
            if batch is None:  # pragma: no cover - `mine` > written implies a pending delta
                return
            try:
                add_counts(self._table, hour, self._shard, batch)
            except Exception:
                with self._lock:  # not written: the next write for this hour carries it
                    row.pending = _merged(row.pending, batch)
                raise
            with self._lock:
                row.written = upto

    def _forget_idle_rows(self) -> None:
        # Called with `_lock` held. Rows whose deltas are all written are dropped, so the
        # map holds only the hours with work in flight (normally one or two).
        for hour in [h for h, r in self._rows.items() if r.written == r.added]:
            del self._rows[hour]

    def _take_requests(self) -> int:
        with self._lock:
            now = self._speech_requests()
            taken, self._counted = max(now - self._counted, 0), now
            return taken


class _IndexWriter:
    """Index row upserts by group commit: the rows that gather while one write is in flight
    go together in the next, as one Table transaction (they share the index partition)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._writer = threading.Lock()  # one write at a time
        self._lock = threading.Lock()  # guards the fields below
        self._pending: dict[str, tuple[datetime, dict[str, Any]]] = {}  # RowKey -> newest
        self._added = 0
        self._written = 0

    def put(self, entity: dict[str, Any], updated: datetime) -> None:
        """Upsert `entity`; returns once it is written (by this thread or in another's write)."""
        with self._lock:
            self._keep(str(entity["RowKey"]), updated, entity)
            self._added += 1
            mine = self._added
        with self._writer:
            with self._lock:
                if self._written >= mine:
                    return  # the previous write carried it
                batch, upto, self._pending = self._pending, self._added, {}
            try:
                self._write([entity for _, entity in batch.values()])
            except Exception:
                with self._lock:  # not written: the next write carries them
                    for key, (at, row) in batch.items():
                        self._keep(key, at, row)
                raise
            with self._lock:
                self._written = upto

    def _keep(self, key: str, updated: datetime, entity: dict[str, Any]) -> None:
        # Called with `_lock` held. A transaction may hold a row once: of two changes of one
        # job gathered together, the later state is the row's.
        held = self._pending.get(key)
        if held is None or held[0] <= updated:
            self._pending[key] = (updated, entity)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with storage_errors("update job index"):
            if len(rows) == 1:
                self._table.upsert_entity(rows[0], mode=UpdateMode.REPLACE)
                return
            for start in range(0, len(rows), _TRANSACTION_ROWS):
                chunk = rows[start : start + _TRANSACTION_ROWS]
                self._table.submit_transaction(
                    [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk]
                )


def _merged(total: counters.HourCounts | None, delta: counters.HourCounts) -> counters.HourCounts:
    merged = counters.HourCounts()
    if total is not None:
        merged.add(total)
    merged.add(delta)
    return merged
