"""Job rows: pure (de)serialisation, and conditional updates against real Azurite."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from devhost.services import Azurite
from shared import jobs
from shared.errors import JobConflictError
from shared.job_store import JobStore, from_entity, to_entity
from shared.jobs import JobState

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def record(name: str = "calls/a#b?.wav") -> jobs.JobRecord:
    return jobs.new_job(
        container="audio-input",
        name=name,
        etag='"0x8D"',
        size=3 * 1024**3,  # beyond Int32
        now=T0,
        timeout=timedelta(hours=30),
        lease=timedelta(minutes=10),
    )


def test_entity_round_trip() -> None:
    full = dataclasses.replace(
        record(),
        state=JobState.RUNNING,
        attempts=2,
        channels=2,
        audio_format="wav",
        duration_s=12.5,
        transcription_id="t",
        transcription_url="http://s/t",
        submitted_at=T0,
        needs_lookup=True,
    )
    entity = to_entity(full)
    assert entity["PartitionKey"] == "job"
    assert entity["RowKey"] == full.key
    assert entity["Active"] is True
    assert "CheckedAt" not in entity  # None fields are left out
    assert from_entity(entity, "etag-1") == dataclasses.replace(full, version="etag-1")


def test_terminal_jobs_are_not_active() -> None:
    done = dataclasses.replace(record(), state=JobState.DONE)
    assert to_entity(done)["Active"] is False


@pytest.fixture
def store(azurite: Azurite) -> Iterator[JobStore]:
    table = TableClient.from_connection_string(
        azurite.connection_string, f"jobs{uuid.uuid4().hex[:10]}"
    )
    table.create_table()
    try:
        yield JobStore(table)
    finally:
        table.delete_table()


@pytest.mark.integration
def test_create_is_idempotent_per_key(store: JobStore) -> None:
    created = store.create(record())
    assert created is not None
    assert created.version
    assert store.create(record()) is None
    fetched = store.get(created.key)
    assert fetched == created
    assert fetched is not None
    assert fetched.blob_size == 3 * 1024**3
    assert store.get("tj-missing") is None


@pytest.mark.integration
def test_updates_are_conditional(store: JobStore) -> None:
    created = store.create(record())
    assert created is not None
    now = T0 + timedelta(minutes=11)
    first = store.save(created, jobs.claim(created, now=now, lease=timedelta(minutes=10)))
    assert first.version != created.version
    # A second run still holding the old version loses the race.
    with pytest.raises(JobConflictError):
        store.save(created, jobs.claim(created, now=now, lease=timedelta(minutes=10)))
    assert store.get(created.key) == first


@pytest.mark.integration
def test_active_query_returns_only_unfinished_jobs(store: JobStore) -> None:
    a = store.create(record("a.wav"))
    b = store.create(record("b.wav"))
    assert a is not None
    assert b is not None
    store.save(b, jobs.reject(b, now=T0, reason_code="NotAudio", reason="text"))
    assert [r.key for r in store.active()] == [a.key]
    store.save(a, jobs.fail(a, now=T0, error_code="TimedOut", error_message="late"))
    assert store.active() == []


@pytest.mark.integration
def test_an_unreadable_row_does_not_stop_the_active_query(store: JobStore) -> None:
    good = store.create(record("good.wav"))
    assert good is not None
    store._table.create_entity(
        {"PartitionKey": "job", "RowKey": "tj-broken", "Active": True, "State": "exploded"}
    )
    assert [r.key for r in store.active()] == [good.key]


def test_history_round_trips_and_is_capped() -> None:
    from shared import job_history  # noqa: PLC0415

    history: tuple[job_history.Transition, ...] = ()
    for i in range(50):
        entry = job_history.Transition("deferred", T0 + timedelta(minutes=i), "Throttled")
        history = job_history.append(history, entry)
    assert len(history) == job_history.HISTORY_CAP
    assert history[0].at == T0  # how the job started is kept
    assert history[-1].at == T0 + timedelta(minutes=49)  # and the latest
    full = dataclasses.replace(record(), history=history)
    assert from_entity(to_entity(full)).history == history
    assert job_history.decode("not json") == ()


@pytest.mark.integration
def test_state_changes_are_recorded_and_observed(store: JobStore) -> None:
    seen: list[tuple[JobState | None, JobState]] = []

    def observer(before: jobs.JobRecord | None, after: jobs.JobRecord) -> None:
        seen.append((before.state if before else None, after.state))

    store.observe(observer)
    created = store.create(record())
    assert created is not None
    later = T0 + timedelta(minutes=1)
    claimed = store.save(created, jobs.claim(created, now=later, lease=timedelta(minutes=5)))
    failed = store.save(
        claimed, jobs.fail(claimed, now=later, error_code="TimedOut", error_message="late")
    )
    fetched = store.get(failed.key)
    assert fetched is not None
    assert [(t.state, t.code) for t in fetched.history] == [
        ("received", ""),
        ("failed", "TimedOut"),  # a claim is no state change: not recorded
    ]
    assert seen == [(None, JobState.RECEIVED), (JobState.RECEIVED, JobState.FAILED)]


@pytest.mark.integration
def test_a_failing_observer_never_fails_the_write(store: JobStore) -> None:
    def broken(before: object, after: object) -> None:
        raise RuntimeError("counter table unavailable")

    store.observe(broken)
    created = store.create(record("other.wav"))
    assert created is not None
    assert store.get(created.key) == created
