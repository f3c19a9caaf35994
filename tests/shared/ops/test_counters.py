"""Hourly counters: what one change adds, how counts add up, percentiles from the histogram."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from shared import jobs
from shared.jobs import JobRecord, JobState
from shared.ops import counters
from shared.ops.counters import HourCounts, change_delta, percentile

T0 = datetime(2026, 12, 5, 8, 20, tzinfo=UTC)


def job(name: str = "a.wav") -> JobRecord:
    return jobs.new_job(
        container="in",
        name=name,
        etag='"1"',
        size=10,
        now=T0,
        timeout=timedelta(hours=30),
        lease=timedelta(minutes=10),
    )


def done(after: timedelta, audio: float = 90.0) -> JobRecord:
    end = T0 + after
    return dataclasses.replace(
        job(), state=JobState.DONE, finished_at=end, updated=end, duration_s=audio, attempts=1
    )


def test_an_ending_counts_once_in_the_hour_it_ended() -> None:
    record = done(timedelta(minutes=50))  # 08:20 + 50 min = 09:10
    delta = change_delta(dataclasses.replace(record, state=JobState.COMPLETING), record)
    assert list(delta) == [datetime(2026, 12, 5, 9, tzinfo=UTC)]
    (counts,) = delta.values()
    assert (counts.done, counts.failed, counts.audio_seconds, counts.submissions) == (1, 0, 90, 1)
    assert sum(counts.turnaround) == 1


def test_in_flight_changes_count_nothing() -> None:
    record = job()
    assert change_delta(None, record) == {}
    submitted = dataclasses.replace(record, state=JobState.SUBMITTED)
    assert change_delta(record, submitted) == {}


def test_a_retry_takes_the_failure_back_from_its_hour() -> None:
    failed = jobs.fail(job(), now=T0, error_code="TimedOut", error_message="late")
    first = change_delta(None, failed)[counters.hour_of(T0)]
    assert (first.failed, first.reasons["TimedOut"]) == (1, 1)
    retried = jobs.retry(failed, now=T0 + timedelta(hours=3), timeout=timedelta(hours=1))
    back = change_delta(failed, retried)
    assert list(back) == [counters.hour_of(T0)]
    total = HourCounts()
    total.add(first)
    total.add(back[counters.hour_of(T0)])
    assert (total.failed, total.ended, dict(total.reasons)) == (0, 0, {})


def test_properties_round_trip_with_odd_reason_codes() -> None:
    counts = HourCounts(done=2, failed=1, audio_seconds=12.5, speech_requests=9)
    counts.reasons["Invalid-Code.x"] = 1
    counts.turnaround[3] = 2
    back = HourCounts.from_properties(counts.to_properties())
    assert back.to_properties() == counts.to_properties()
    assert all(name.isidentifier() for name in counts.to_properties())


def test_percentiles_interpolate_within_a_bucket() -> None:
    histogram = [0] * (len(counters.TURNAROUND_BOUNDS) + 1)
    assert percentile(histogram, 0.5) is None
    histogram[1] = 10  # ten jobs between 5 and 10 s
    assert percentile(histogram, 0.5) == 7.5
    histogram[-1] = 10  # ten more beyond the last bound
    assert percentile(histogram, 0.95) == counters.TURNAROUND_BOUNDS[-1]
    assert percentile(histogram, 0.25) == 7.5


def test_counts_of_records_match_the_sum_of_their_changes() -> None:
    records = [done(timedelta(seconds=s)) for s in (3, 40, 4000)]
    by_hour = counters.counts_of(records)
    assert sum(c.done for c in by_hour.values()) == 3
    assert sorted(by_hour) == [counters.hour_of(T0), counters.hour_of(T0 + timedelta(hours=1))]


def test_row_keys_sort_by_hour_and_select_a_window() -> None:
    keys = [counters.row_key(T0 + timedelta(hours=h), s) for h in (0, 1) for s in (0, 7)]
    assert keys == sorted(keys)
    query = counters.hour_range_filter(T0, T0 + timedelta(hours=2))
    assert "RowKey ge '2026120508'" in query
    assert "RowKey lt '2026120510'" in query
    assert {counters.shard_of(f"tj-{i}") for i in range(200)} == set(range(counters.SHARDS))
