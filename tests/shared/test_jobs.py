"""The job state machine: every transition legal and illegal, attempts, leases, deadlines."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shared import jobs
from shared.jobs import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Event,
    IllegalTransitionError,
    JobRecord,
    JobState,
)

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def received() -> JobRecord:
    return jobs.new_job(
        container="audio-input",
        name="calls/a b#c?.wav",
        etag='"0x8D1"',
        size=1234,
        now=T0,
        timeout=timedelta(hours=30),
        lease=LEASE,
    )


def in_state(state: JobState, **changes: object) -> JobRecord:
    return dataclasses.replace(received(), state=state, **changes)  # type: ignore[arg-type]


# One representative call per event, so the whole table can be checked mechanically.
APPLY: dict[Event, Callable[[JobRecord], JobRecord]] = {
    Event.CLAIM: lambda r: jobs.claim(r, now=T0, lease=LEASE),
    Event.SUBMITTED: lambda r: jobs.submitted(
        r,
        now=T0,
        transcription_id="t1",
        transcription_url="http://speech/transcriptions/t1",
        first_check=timedelta(seconds=30),
    ),
    Event.OBSERVED: lambda r: jobs.observe(r, now=T0, service_status="Running", next_check_at=None),
    Event.FINISHED: lambda r: jobs.finish(r, now=T0, service_status="Succeeded", lease=LEASE),
    Event.RENEW_LEASE: lambda r: jobs.renew_lease(r, now=T0, lease=LEASE),
    Event.COMPLETED: lambda r: jobs.complete(r, now=T0),
    Event.DEFERRED: lambda r: jobs.defer(
        r, now=T0, until=T0 + LEASE, reason_code="Throttled", reason="429"
    ),
    Event.REJECTED: lambda r: jobs.reject(r, now=T0, reason_code="NotAudio", reason="text"),
    Event.FAILED: lambda r: jobs.fail(r, now=T0, error_code="TimedOut", error_message="late"),
    Event.RETRY: lambda r: jobs.retry(r, now=T0, timeout=timedelta(hours=30)),
    Event.QUEUED: lambda r: jobs.queue(r, now=T0, until=T0 + LEASE),
    Event.BATCHED: lambda r: jobs.batched(r, now=T0, batch_key="tb-1", lease=LEASE),
    Event.UNBATCHED: lambda r: jobs.unbatch(r, now=T0),
}


def test_every_event_has_a_representative_call() -> None:
    assert set(APPLY) == set(Event) == set(TRANSITIONS)


@pytest.mark.parametrize("event", list(Event))
@pytest.mark.parametrize("state", list(JobState))
def test_transition_table_is_enforced(state: JobState, event: Event) -> None:
    allowed, target = TRANSITIONS[event]
    record = in_state(state)
    if state in allowed:
        result = APPLY[event](record)
        assert result.state == (state if target is None else target)
        assert result.key == record.key
    else:
        with pytest.raises(IllegalTransitionError) as info:
            APPLY[event](record)
        assert info.value.state == state
        assert record.key in str(info.value)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_accept_no_event_but_an_operator_retry_of_a_failure(
    state: JobState,
) -> None:
    for event in Event:
        if event is Event.RETRY and state is JobState.FAILED:
            continue
        with pytest.raises(IllegalTransitionError):
            APPLY[event](in_state(state))


def test_states_partition_into_active_and_terminal() -> None:
    assert set(JobState) == ACTIVE_STATES | TERMINAL_STATES
    assert not ACTIVE_STATES & TERMINAL_STATES
    assert all(s.is_terminal for s in TERMINAL_STATES)
    assert received().is_active
    assert not in_state(JobState.DONE).is_active


def test_job_key_is_stable_per_blob_version_and_safe_as_row_key() -> None:
    key = jobs.job_key("audio-input", "calls/a b#c?.wav", '"0x8D1"')
    assert key == jobs.job_key("audio-input", "calls/a b#c?.wav", '"0x8D1"')
    assert key != jobs.job_key("audio-input", "calls/a b#c?.wav", '"0x8D2"')  # re-upload
    assert key != jobs.job_key("other", "calls/a b#c?.wav", '"0x8D1"')
    assert key.startswith("tj-")
    assert len(key) == 43
    assert not set(key) & set("/\\#?")


def test_new_job_is_received_with_lease_and_deadline() -> None:
    record = received()
    assert record.state is JobState.RECEIVED
    assert record.attempts == 0
    assert record.deadline == T0 + timedelta(hours=30)
    assert record.next_check_at == T0 + LEASE
    assert not jobs.is_due(record, T0 + LEASE - timedelta(seconds=1))
    assert jobs.is_due(record, T0 + LEASE)


def test_resuming_a_received_job_requires_a_lookup_first() -> None:
    assert jobs.must_look_up(received())  # its creator may have POSTed before dying
    assert not jobs.must_look_up(in_state(JobState.DEFERRED))  # e.g. throttled: no job made
    assert jobs.must_look_up(in_state(JobState.DEFERRED, needs_lookup=True))  # POST timed out


def test_a_claim_is_a_lease_and_marks_a_possible_post() -> None:
    for state in (JobState.RECEIVED, JobState.DEFERRED):
        claimed = jobs.claim(in_state(state), now=T0 + LEASE, lease=LEASE)
        assert claimed.state is state
        assert claimed.next_check_at == T0 + 2 * LEASE
        # If this run dies (or cannot record the outcome) after its POST, the next one looks.
        assert claimed.needs_lookup
        assert jobs.must_look_up(claimed)


def test_submission_counts_attempts_and_clears_errors() -> None:
    record = in_state(JobState.DEFERRED, attempts=1, error_code="Throttled", needs_lookup=True)
    result = APPLY[Event.SUBMITTED](record)
    assert result.attempts == 2
    assert result.error_code == ""
    assert not result.needs_lookup
    assert result.submitted_at == T0
    assert result.next_check_at == T0 + timedelta(seconds=30)
    assert result.transcription_id == "t1"


def test_transcription_url_with_query_is_refused() -> None:
    with pytest.raises(ValueError, match="query"):
        jobs.submitted(
            received(),
            now=T0,
            transcription_id="t1",
            transcription_url="http://speech/transcriptions/t1?sig=secret",
            first_check=timedelta(0),
        )


def test_deferring_a_submitted_job_forgets_its_transcription() -> None:
    record = in_state(JobState.RUNNING, transcription_id="t1", transcription_url="u", attempts=1)
    result = jobs.defer(record, now=T0, until=T0, reason_code="Vanished", reason="gone")
    assert (result.transcription_id, result.transcription_url) == ("", "")
    assert result.attempts == 1  # the resubmission counts it
    assert result.error_code == "Vanished"
    assert jobs.is_due(result, T0)


def test_deferring_records_whether_a_lookup_is_needed() -> None:
    claimed = in_state(JobState.DEFERRED, needs_lookup=True)
    throttled = jobs.defer(claimed, now=T0, until=T0 + LEASE, reason_code="Throttled", reason="x")
    assert not throttled.needs_lookup  # a 429 proves nothing was created
    unknown = jobs.defer(
        claimed, now=T0, until=T0 + LEASE, reason_code="Timeout", reason="x", needs_lookup=True
    )
    assert unknown.needs_lookup
    assert not jobs.is_due(throttled, T0)


def test_finish_records_service_outcome_and_completion_lease() -> None:
    record = in_state(JobState.RUNNING)
    result = jobs.finish(
        record,
        now=T0,
        service_status="Failed",
        lease=LEASE,
        error_code="InvalidAudioFormat",
        error_message="cannot decode",
    )
    assert result.state is JobState.COMPLETING
    assert result.service_status == "Failed"
    assert (result.error_code, result.error_message) == ("InvalidAudioFormat", "cannot decode")
    assert result.next_check_at == T0 + LEASE
    renewed = jobs.renew_lease(result, now=T0 + LEASE, lease=LEASE)
    assert renewed.next_check_at == T0 + 2 * LEASE


def test_terminal_transitions_clear_the_clock() -> None:
    for event in (Event.COMPLETED, Event.FAILED):
        result = APPLY[event](in_state(JobState.COMPLETING))
        assert result.next_check_at is None
        assert result.finished_at == T0
        assert not jobs.is_due(result, T0 + timedelta(days=1))


def test_deadline() -> None:
    record = received()
    assert not jobs.is_past_deadline(record, T0 + timedelta(hours=29))
    assert jobs.is_past_deadline(record, T0 + timedelta(hours=30))
    assert not jobs.is_past_deadline(in_state(JobState.DONE), T0 + timedelta(days=9))


def test_attempts_left() -> None:
    assert jobs.attempts_left(in_state(JobState.DEFERRED, attempts=2), 3)
    assert not jobs.attempts_left(in_state(JobState.DEFERRED, attempts=3), 3)


def test_observe_sets_status_and_next_check() -> None:
    result = jobs.observe(
        in_state(JobState.SUBMITTED),
        now=T0,
        service_status="NotStarted",
        next_check_at=T0 + timedelta(minutes=1),
    )
    assert result.state is JobState.RUNNING
    assert result.checked_at == T0
    assert result.next_check_at == T0 + timedelta(minutes=1)


def test_with_audio_changes_facts_not_state() -> None:
    result = jobs.with_audio(received(), channels=2, audio_format="wav", duration_s=61.5)
    assert (result.state, result.channels, result.audio_format, result.duration_s) == (
        JobState.RECEIVED,
        2,
        "wav",
        61.5,
    )


def test_describe_names_job_and_blob() -> None:
    record = received()
    assert jobs.describe(record) == f"job={record.key} blob=audio-input/calls/a b#c?.wav"


def test_version_is_carried_through_transitions() -> None:
    record = dataclasses.replace(received(), version="etag-1")
    assert APPLY[Event.CLAIM](record).version == "etag-1"


def test_deployment_tag_names_account_and_input_container() -> None:
    tag = jobs.deployment_tag("acct", "audio-input")
    assert tag == "speech-batch-functions: acct/audio-input"
    assert tag != jobs.deployment_tag("acct", "other-input")
    assert tag != jobs.deployment_tag("other", "audio-input")


def test_retry_gives_a_failed_job_a_fresh_attempt_due_now() -> None:
    failed = in_state(
        JobState.FAILED,
        attempts=3,
        finished_at=T0,
        error_code="OutOfAttempts",
        transcription_id="t",
    )
    later = T0 + timedelta(days=2)
    retried = jobs.retry(failed, now=later, timeout=timedelta(hours=30))
    assert retried.state is JobState.DEFERRED
    assert retried.is_active
    assert jobs.is_due(retried, later)
    assert retried.attempts == 0
    assert retried.deadline == later + timedelta(hours=30)
    assert retried.finished_at is None
    assert retried.transcription_id == ""
    assert retried.error_code == jobs.RETRY_CODE
    assert "OutOfAttempts" in retried.error_message


def test_a_batched_job_counts_an_attempt_and_names_its_batch() -> None:
    queued = jobs.queue(in_state(JobState.RECEIVED, needs_lookup=True), now=T0, until=T0 + LEASE)
    assert queued.state is JobState.QUEUED
    assert queued.next_check_at == T0 + LEASE  # the poller's safety net for a lost wake-up
    assert not queued.needs_lookup  # nothing was posted for it
    member = jobs.batched(queued, now=T0, batch_key="tb-1", lease=LEASE)
    assert (member.state, member.batch_key, member.attempts) == (JobState.BATCHED, "tb-1", 1)
    assert member.transcription_id == ""  # the batch holds the transcription, never a member
    with pytest.raises(ValueError, match="batch_key"):
        jobs.batched(queued, now=T0, batch_key="", lease=LEASE)


def test_a_batch_never_posted_gives_its_jobs_back_without_counting_the_attempt() -> None:
    member = jobs.batched(in_state(JobState.QUEUED), now=T0, batch_key="tb-1", lease=LEASE)
    back = jobs.unbatch(member, now=T0 + LEASE)
    assert (back.state, back.batch_key, back.attempts) == (JobState.QUEUED, "", 0)
    assert jobs.is_due(back, T0 + LEASE)


def test_a_batched_job_ends_on_its_own() -> None:
    member = in_state(JobState.BATCHED, batch_key="tb-1", attempts=1)
    assert jobs.complete(member, now=T0).state is JobState.DONE
    retry = jobs.defer(member, now=T0, until=T0 + LEASE, reason_code="X", reason="file failed")
    assert (retry.state, retry.batch_key) == (JobState.DEFERRED, "")  # retried on its own
    assert jobs.reject(member, now=T0, reason_code="Superseded", reason="x").is_active is False
