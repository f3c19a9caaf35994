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

import functools
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Generic, TypeAlias, TypeVar

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

P = TypeVar("P")
# Index rows gathered for one write: RowKey -> (the change's time, the row).
_IndexRows: TypeAlias = dict[str, tuple[datetime, dict[str, Any]]]


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


class _GroupCommit(Generic[P]):
    """Group commit to one target: what callers gather while a write is in flight is
    combined and goes in the next write; each caller returns once its part is written (by
    itself, or by another caller's write that carried it).

    `lock` guards the bookkeeping and is shared with the owner, which may look a group up
    and `gather` into it in one critical section. A failed write puts its part back, so the
    next write carries it, and raises to the caller that tried it.
    """

    def __init__(
        self,
        write: Callable[[P], None],
        combine: Callable[[P | None, P], P],
        lock: threading.Lock,
    ) -> None:
        self._write = write
        self._combine = combine
        self._lock = lock
        self._writer = threading.Lock()  # one write at a time
        self._pending: P | None = None
        self._added = 0  # parts gathered so far
        self._written = 0  # parts durably written (the first `_written` of `_added`)

    @property
    def idle(self) -> bool:
        """Every part gathered is written. Read with `lock` held."""
        return self._written == self._added

    def gather(self, part: P) -> int:
        """Add `part` to the next write; returns the ticket `commit` waits for. Call with
        `lock` held."""
        self._pending = self._combine(self._pending, part)
        self._added += 1
        return self._added

    def commit(self, ticket: int) -> None:
        """Return once the part of `ticket` is written, writing it (and what else gathered)
        unless a write already carried it."""
        with self._writer:
            with self._lock:
                if self._written >= ticket:
                    return  # the previous write carried it
                batch, upto, self._pending = self._pending, self._added, None
            if batch is None:  # pragma: no cover - ticket > written implies a pending part
                return
            try:
                self._write(batch)
            except Exception:
                with self._lock:  # not written: the next write carries it
                    self._pending = self._combine(self._pending, batch)
                raise
            with self._lock:
                self._written = upto

    def add(self, part: P) -> None:
        """`gather` then `commit`, for an owner with no lookup to do under the lock."""
        with self._lock:
            ticket = self.gather(part)
        self.commit(ticket)


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
        self._rows: dict[datetime, _GroupCommit[counters.HourCounts]] = {}
        # Index rows share one partition: gathered upserts go as one transaction.
        self._index: _GroupCommit[_IndexRows] = _GroupCommit(
            functools.partial(_write_index, table), _newest, threading.Lock()
        )

    def __call__(self, previous: JobRecord | None, record: JobRecord) -> None:
        entity = index.index_entity(record)
        self._index.add({str(entity["RowKey"]): (record.updated, entity)})
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
                row = self._rows[hour] = _GroupCommit(
                    functools.partial(add_counts, self._table, hour, self._shard),
                    _merged,
                    self._lock,
                )
            ticket = row.gather(delta)
        row.commit(ticket)

    def _forget_idle_rows(self) -> None:
        # Called with `_lock` held. Rows whose deltas are all written are dropped, so the
        # map holds only the hours with work in flight (normally one or two).
        for hour in [h for h, r in self._rows.items() if r.idle]:
            del self._rows[hour]

    def _take_requests(self) -> int:
        with self._lock:
            now = self._speech_requests()
            taken, self._counted = max(now - self._counted, 0), now
            return taken


def _newest(held: _IndexRows | None, rows: _IndexRows) -> _IndexRows:
    # A transaction may hold a row once: of two changes of one job gathered together, the
    # later state is the row's.
    merged = dict(held or {})
    for key, (updated, entity) in rows.items():
        if key not in merged or merged[key][0] <= updated:
            merged[key] = (updated, entity)
    return merged


def _write_index(table: TableClient, rows: _IndexRows) -> None:
    entities = [entity for _, entity in rows.values()]
    with storage_errors("update job index"):
        if len(entities) == 1:
            table.upsert_entity(entities[0], mode=UpdateMode.REPLACE)
            return
        for start in range(0, len(entities), _TRANSACTION_ROWS):
            chunk = entities[start : start + _TRANSACTION_ROWS]
            table.submit_transaction(
                [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk]
            )


def _merged(total: counters.HourCounts | None, delta: counters.HourCounts) -> counters.HourCounts:
    merged = counters.HourCounts()
    if total is not None:
        merged.add(total)
    merged.add(delta)
    return merged
