"""Batches, purely: the record's transitions, its Table row, messages and result matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import batches
from shared.batch_messages import BatchWork, batch_completion_body, parse_batch_message
from shared.batch_results import FileOutcome, report_outcomes, result_source, source_key
from shared.batch_store import from_entity, to_entity
from shared.batches import BatchState, IllegalBatchTransitionError
from shared.jobs import job_key

T0 = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def members(n: int) -> list[str]:
    return [job_key("audio-input", f"calls/{i}.wav", f'"0x{i}"') for i in range(n)]


def draft(n: int = 3) -> batches.BatchRecord:
    return batches.new_batch(
        members(n), channels=2, now=T0, lease=LEASE, timeout=timedelta(hours=30)
    )


def test_a_batch_is_posted_then_finished_then_closed() -> None:
    batch = draft()
    assert batch.state is BatchState.POSTING
    assert batch.next_check_at == T0 + LEASE  # the poller recovers it after a crash
    assert batches.is_batch_key(batch.key)
    assert batch.key.startswith("tb-")
    posted = batches.posted(
        batch,
        now=T0,
        transcription_id="t1",
        transcription_url="http://speech/transcriptions/t1",
        first_check=timedelta(seconds=5),
    )
    assert (posted.state, posted.transcription_id) == (BatchState.SUBMITTED, "t1")
    running = batches.observed(posted, now=T0, service_status="Running", next_check_at=T0)
    done = batches.finished(running, now=T0, service_status="Succeeded", lease=LEASE)
    assert done.state is BatchState.COMPLETING
    closed = batches.close(done, now=T0)
    assert (closed.state, closed.is_active) == (BatchState.DONE, False)
    with pytest.raises(IllegalBatchTransitionError):
        batches.close(closed, now=T0)
    with pytest.raises(IllegalBatchTransitionError):
        batches.finished(batch, now=T0, service_status="Succeeded", lease=LEASE)
    with pytest.raises(ValueError, match="query string"):
        batches.posted(
            batch,
            now=T0,
            transcription_id="t",
            transcription_url="http://x/t?sig=s",
            first_check=LEASE,
        )


def test_a_batch_only_loses_members_and_only_before_its_post() -> None:
    batch = draft(3)
    fewer = batches.with_members(batch, batch.members[:2], now=T0)
    assert fewer.members == batch.members[:2]
    with pytest.raises(ValueError, match="never gain"):
        batches.with_members(batch, [*batch.members, "tj-other"], now=T0)
    with pytest.raises(ValueError, match="twice"):
        batches.new_batch(["tj-a", "tj-a"], channels=1, now=T0, lease=LEASE, timeout=LEASE)
    with pytest.raises(ValueError, match="at least one"):
        batches.new_batch([], channels=1, now=T0, lease=LEASE, timeout=LEASE)


def test_the_same_recordings_batched_again_later_get_a_new_key() -> None:
    keys = members(3)
    assert batches.batch_key(keys, T0) == batches.batch_key(list(reversed(keys)), T0)
    assert batches.batch_key(keys, T0) != batches.batch_key(keys, T0 + timedelta(seconds=1))


def test_a_batch_of_a_thousand_round_trips_through_its_table_row() -> None:
    batch = draft(1000)
    entity = to_entity(batch)
    assert all(len(v) < 32_000 for k, v in entity.items() if k.startswith("Members"))
    assert entity["PartitionKey"] == "batch"
    assert entity["Active"] is True
    back = from_entity(entity, etag="W/1")
    assert back == batch.__class__(**{**batch.__dict__, "version": "W/1"})
    entity.pop("Members1")  # a row cut short must not pass for a smaller batch
    with pytest.raises(ValueError, match="incomplete"):
        from_entity(entity)


def test_batch_messages_are_told_from_job_completions() -> None:
    assert parse_batch_message('{"batch_run": "2026-12-05T06:00:00+00:00"}') == (
        BatchWork.RUN,
        "",
    )
    body = batch_completion_body("tb-abc")
    assert parse_batch_message(body) == (BatchWork.COMPLETE, "tb-abc")
    assert parse_batch_message('{"job_key": "tj-abc"}') is None
    assert parse_batch_message('{"batch_key": "tj-not-a-batch"}') is None
    assert parse_batch_message("not json") is None


def test_results_are_matched_by_source_url_never_by_position() -> None:
    sent = "https://acct.blob.core.windows.net/audio-input/calls/a%20b%23c.wav?sv=1&sig=x"
    echoed = "https://ACCT.blob.core.windows.net/audio-input/calls/a b%23c.wav"
    assert source_key(sent) == source_key(echoed)
    assert source_key(sent) != source_key(sent.replace("a%20b", "a%20c"))
    assert result_source({"source": echoed}) == echoed
    with pytest.raises(ValueError, match="no source"):
        result_source({"combinedRecognizedPhrases": []})


def test_the_report_says_which_file_failed() -> None:
    report = {
        "details": [
            {"source": "https://a/in/1.wav", "status": "Succeeded"},
            {
                "source": "https://a/in/2.wav",
                "status": "Failed",
                "errorKind": "InvalidAudioFormat",
                "errorMessage": "not audio",
            },
            {"status": "Failed"},  # no source: cannot be matched, left out
        ]
    }
    assert report_outcomes(report) == {
        source_key("https://a/in/1.wav"): FileOutcome(True),
        source_key("https://a/in/2.wav"): FileOutcome(False, "InvalidAudioFormat", "not audio"),
    }
    assert report_outcomes({"details": "garbage"}) == {}
