"""Index rows: newest first by RowKey, filters, and the list item."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from shared import jobs
from shared.jobs import JobState
from shared.ops import index

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def job(name: str, created: datetime) -> jobs.JobRecord:
    return jobs.new_job(
        container="in",
        name=name,
        etag='"1"',
        size=1,
        now=created,
        timeout=timedelta(hours=1),
        lease=timedelta(minutes=1),
    )


def test_newer_jobs_sort_first() -> None:
    keys = [index.index_row_key(job("a", T0 + timedelta(seconds=s))) for s in (0, 1, 3600)]
    assert keys == sorted(keys, reverse=True)


def test_since_is_a_row_key_bound() -> None:
    since = T0 + timedelta(minutes=30)
    query = index.list_filter(state=None, prefix=None, since=since)
    bound = query.split("RowKey lt '")[1].split("'")[0]
    assert index.index_row_key(job("new", since)) < bound
    assert index.index_row_key(job("new", since + timedelta(hours=1))) < bound
    assert index.index_row_key(job("old", since - timedelta(seconds=1))) > bound


def test_filters_quote_their_values() -> None:
    query = index.list_filter(state="failed", prefix="calls/o'brien", since=None)
    assert "State eq 'failed'" in query
    assert "BlobName ge 'calls/o''brien' and BlobName lt 'calls/o''brieo'" in query


def test_list_item_carries_times_and_turnaround() -> None:
    record = dataclasses.replace(
        job("x.wav", T0),
        state=JobState.DONE,
        finished_at=T0 + timedelta(seconds=42),
        duration_s=12.0,
    )
    item = index.list_item(index.index_entity(record))
    assert item["state"] == "done"
    assert item["created"] == "2026-12-05T08:00:00Z"
    assert item["turnaroundSeconds"] == 42
    assert item["audioSeconds"] == 12.0
    assert item["reasonCode"] is None
