"""The recorder's hourly counters against a real Azurite table: concurrent changes share
counter writes (group commit) and none of their counts is lost."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableClient, TableServiceClient

from devhost.services import Azurite
from shared import jobs
from shared.jobs import JobRecord, JobState
from shared.ops import counters, index
from shared.ops.recorder import Recorder

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 5, 8, 20, tzinfo=UTC)


class RequestCount(SansIOHTTPPolicy):
    """Counts the requests `matches` picks out (thread-safe: the recorder writes side by side)."""

    def __init__(self, matches: Callable[[str, str], bool]) -> None:
        self.count = 0
        self._matches = matches
        self._lock = threading.Lock()

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        if self._matches(http.method, unquote(http.url)):
            with self._lock:
                self.count += 1


def counter_read(method: str, url: str) -> bool:
    """A read of a counter row: `add_counts` reads its row once per write it tries."""
    return method == "GET" and f"PartitionKey='{counters.PARTITION}'" in url


def index_write(method: str, url: str) -> bool:
    """A write that carries index rows: a single upsert or a transaction."""
    single = f"PartitionKey='{index.PARTITION}'" in url
    return (method in ("PUT", "MERGE") and single) or url.endswith("/$batch")


@contextmanager
def fresh_table(azurite: Azurite, policy: SansIOHTTPPolicy) -> Iterator[TableClient]:
    """A new table on Azurite whose client counts requests with `policy`; deleted after."""
    name = f"rec{uuid.uuid4().hex[:12]}"
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.create_table(name)
    try:
        yield TableClient.from_connection_string(
            azurite.connection_string, name, per_call_policies=[policy]
        )
    finally:
        service.delete_table(name)


@pytest.fixture
def table(azurite: Azurite) -> Iterator[tuple[TableClient, RequestCount]]:
    reads = RequestCount(counter_read)
    with fresh_table(azurite, reads) as client:
        yield client, reads


def record_side_by_side(recorder: Recorder, changes: list[tuple[JobRecord, JobRecord]]) -> None:
    """Every change recorded at once, one thread each."""
    start = threading.Barrier(len(changes))

    def record(pair: tuple[JobRecord, JobRecord]) -> None:
        start.wait(timeout=30)
        recorder(*pair)

    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        list(pool.map(record, changes))


def finished(index: int) -> tuple[JobRecord, JobRecord]:
    """A (completing, done) pair for one recording, ended at T0."""
    record = jobs.new_job(
        container="in",
        name=f"call-{index:03d}.wav",
        etag='"1"',
        size=10,
        now=T0 - timedelta(minutes=5),
        timeout=timedelta(hours=30),
        lease=timedelta(minutes=10),
    )
    completing = dataclasses.replace(record, state=JobState.COMPLETING, attempts=1)
    done = dataclasses.replace(
        completing, state=JobState.DONE, finished_at=T0, updated=T0, duration_s=60.0
    )
    return completing, done


def hour_total(table: TableClient) -> counters.HourCounts:
    total = counters.HourCounts()
    for row in table.query_entities(f"PartitionKey eq '{counters.PARTITION}'"):
        total.add(counters.HourCounts.from_properties(row))
    return total


def test_concurrent_changes_share_counter_writes_and_lose_no_count(
    table: tuple[TableClient, RequestCount],
) -> None:
    client, reads = table
    changes = [finished(i) for i in range(48)]
    record_side_by_side(Recorder(client, lambda: 0, shard=3), changes)

    total = hour_total(client)
    assert (total.done, total.audio_seconds, sum(total.turnaround)) == (48, 48 * 60, 48)
    rows = list(client.query_entities(f"PartitionKey eq '{counters.PARTITION}'"))
    assert [r["RowKey"] for r in rows] == [counters.row_key(T0, 3)]  # one process, one shard
    # One counter write per change would read the row at least 48 times.
    assert reads.count < len(changes)


def test_two_processes_on_one_shard_add_up(table: tuple[TableClient, RequestCount]) -> None:
    client, _ = table
    first, second = Recorder(client, lambda: 0, shard=5), Recorder(client, lambda: 0, shard=5)
    changes = [finished(i) for i in range(24)]

    def record(item: tuple[int, tuple[JobRecord, JobRecord]]) -> None:
        index, pair = item
        (first if index % 2 else second)(*pair)

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(record, enumerate(changes)))
    assert hour_total(client).done == 24  # their ETag races are retried, not lost


def test_concurrent_changes_share_index_writes_and_keep_every_row(azurite: Azurite) -> None:
    writes = RequestCount(index_write)
    with fresh_table(azurite, writes) as client:
        recorder = Recorder(client, lambda: 0, shard=1)
        changes = [finished(i) for i in range(48)]
        record_side_by_side(recorder, changes)
        # A later change of a job already written replaces its row (a single upsert).
        _, done = changes[0]
        recorder(done, dataclasses.replace(done, state=JobState.FAILED, updated=T0))

        rows = {
            r["RowKey"]: dict(r)
            for r in client.query_entities(f"PartitionKey eq '{index.PARTITION}'")
        }
    expected = {index.index_row_key(d): d for _, d in changes}
    assert set(rows) == set(expected)
    for key, record_done in expected.items():
        assert rows[key]["State"] == ("failed" if record_done.key == done.key else "done"), key
    # One upsert per change would be 49 writes; gathered ones go in one transaction.
    assert 1 < writes.count < len(changes), writes.count
