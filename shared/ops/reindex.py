"""``python -m shared.ops reindex``: rebuild the job index and hourly counters from the jobs.

For when bookkeeping was lost (a counter write that failed, rows from before this feature,
a table restored from backup). Reads every job row once, rewrites every index row (100 per
batch transaction), drops index rows whose job is gone, and replaces the counter rows with
the counts the jobs add up to. Speech request counts cannot be derived from the jobs: each
hour keeps the total it had. Run it while the app is quiet: a job that changes during the
run may be counted with its state from before or after.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from azure.data.tables import TableClient, TransactionOperation

from shared.job_store import PARTITION as JOB_PARTITION
from shared.job_store import from_entity
from shared.jobs import JobRecord
from shared.ops import counters, index
from shared.runtime import Runtime
from shared.storage import storage_errors

log = logging.getLogger(__name__)

__all__ = ["ReindexSummary", "reindex"]

_BATCH: Final = 100  # the most operations one Table transaction takes


@dataclass(frozen=True)
class ReindexSummary:
    """What a reindex wrote."""

    jobs: int
    hours: int
    stale_index_rows: int

    def to_json(self) -> dict[str, int]:
        """The CLI's ``--json`` answer."""
        return {"jobs": self.jobs, "hours": self.hours, "staleIndexRows": self.stale_index_rows}


def _batches(operations: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for op in operations:
        batch.append(op)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _jobs(table: TableClient) -> Iterator[JobRecord]:
    query = f"PartitionKey eq '{JOB_PARTITION}'"
    for entity in table.query_entities(query, results_per_page=1000):
        try:
            yield from_entity(entity)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("job=%s: unreadable job row skipped: %r", entity.get("RowKey"), exc)


def _write(table: TableClient, operations: Iterable[Any]) -> None:
    for batch in _batches(operations):
        with storage_errors("reindex"):
            table.submit_transaction(batch)


def reindex(rt: Runtime) -> ReindexSummary:
    """Rebuild the `jobidx` and `stats` partitions of the job table from its job rows."""
    table = rt.storage.table_client(rt.settings.jobs_table)
    records = list(_jobs(table))
    live_rows = {index.index_row_key(r) for r in records}
    _write(
        table,
        (
            (TransactionOperation.UPSERT, index.index_entity(r), {"mode": "replace"})
            for r in records
        ),
    )
    stale = [
        e["RowKey"]
        for e in table.query_entities(
            f"PartitionKey eq '{index.PARTITION}'", select=["RowKey"], results_per_page=1000
        )
        if e["RowKey"] not in live_rows
    ]
    _write(
        table,
        (
            (TransactionOperation.DELETE, {"PartitionKey": index.PARTITION, "RowKey": k})
            for k in stale
        ),
    )
    hours = counters.counts_of(records)
    old_rows = list(
        table.query_entities(f"PartitionKey eq '{counters.PARTITION}'", results_per_page=1000)
    )
    for entity in old_rows:  # keep each hour's Speech request total
        hour = datetime.strptime(entity["RowKey"][:10], "%Y%m%d%H").replace(tzinfo=UTC)
        requests = counters.HourCounts.from_properties(entity).speech_requests
        hours.setdefault(hour, counters.HourCounts()).speech_requests += requests
    new_keys = {counters.row_key(hour, 0) for hour in hours}
    _write(
        table,
        (
            (TransactionOperation.DELETE, {"PartitionKey": counters.PARTITION, "RowKey": key})
            for key in (e["RowKey"] for e in old_rows)
            if key not in new_keys
        ),
    )
    _write(
        table,
        (
            (
                TransactionOperation.UPSERT,
                {
                    "PartitionKey": counters.PARTITION,
                    "RowKey": counters.row_key(hour, 0),
                    **counts.to_properties(),
                },
                {"mode": "replace"},
            )
            for hour, counts in hours.items()
        ),
    )
    log.info(
        "reindex: %d jobs, %d hours, %d stale index rows", len(records), len(hours), len(stale)
    )
    return ReindexSummary(jobs=len(records), hours=len(hours), stale_index_rows=len(stale))
