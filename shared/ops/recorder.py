"""Keeps the operator view's index row and hourly counters as jobs change.

`Recorder` is the job store's change observer (`shared.job_store.ChangeObserver`): after each
state change the store wrote, it upserts the job's index row and adds the change's counts
to its hour's counter row. Each counter row is a read-modify-write conditional on its ETag,
retried a few times on a lost race; SHARDS rows per hour keep those races rare.

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
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final

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


class Recorder:
    """The job store's observer: index row and hourly counters for each state change."""

    def __init__(self, table: TableClient, speech_requests: Callable[[], int]) -> None:
        self._table = table
        self._speech_requests = speech_requests
        self._counted = 0
        self._lock = threading.Lock()

    def __call__(self, previous: JobRecord | None, record: JobRecord) -> None:
        with storage_errors("update job index"):
            self._table.upsert_entity(index.index_entity(record), mode=UpdateMode.REPLACE)
        deltas = counters.change_delta(previous, record)
        requests = self._take_requests()
        if requests:
            hour = counters.hour_of(record.updated)
            deltas.setdefault(hour, counters.HourCounts()).speech_requests += requests
        shard = counters.shard_of(record.key)
        try:
            for hour, delta in deltas.items():
                add_counts(self._table, hour, shard, delta)
                requests = 0 if hour == counters.hour_of(record.updated) else requests
        except Exception:
            self._give_back(requests)  # counted with a later change instead
            raise

    def _take_requests(self) -> int:
        with self._lock:
            now = self._speech_requests()
            taken, self._counted = max(now - self._counted, 0), now
            return taken

    def _give_back(self, requests: int) -> None:
        if requests:
            with self._lock:
                self._counted -= requests
