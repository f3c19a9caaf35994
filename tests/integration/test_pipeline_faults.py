"""Faults end to end: throttled submissions, transient and vanishing jobs, timeouts.

Time-based steps (deferrals, deadlines) move the app's clock forward instead of sleeping:
the runtime's `clock` is the only time source the pipeline reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from devhost.services import wait_for
from shared import jobs
from shared.errors import StorageTransientError
from shared.retry import set_testing
from shared.runtime import Runtime, runtime_for, utc_now
from shared.settings import get_settings
from tests.integration.harness import Clock, Pipeline, delta, mono_call, requests_by_route

pytestmark = pytest.mark.integration

SUBMIT_ROUTE = "POST /speechtotext/transcriptions:submit"


@pytest.fixture
def clock(pipeline: Pipeline) -> Iterator[Clock]:
    rt: Runtime = runtime_for(get_settings())
    original = rt.clock
    fake = Clock()
    rt.clock = fake
    try:
        yield fake
    finally:
        rt.clock = original


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    with set_testing(True, attempts=2, cap=True):
        yield


@pytest.fixture
def faults(pipeline: Pipeline) -> Iterator[Any]:
    """Change the emulator's behaviour; everything is restored afterwards."""
    yield pipeline.configure
    pipeline.configure(
        rate_limit=None, fail_share=0.0, fail_code="InternalServerError", vanish_share=0.0
    )


def _rows(pipeline: Pipeline, names: list[str]) -> list[Any]:
    return [r for r in pipeline.records() if r["BlobName"] in names]


def _settle(pipeline: Pipeline, clock: Clock, names: list[str], timeout: float = 90) -> None:
    """Poll, complete and advance the clock until every job of `names` is terminal.

    The clock moves deferred jobs along; the wall-clock deadline gives the emulator (which
    works in real time) room on a loaded machine.
    """

    def step() -> bool:
        pipeline.poll()
        pipeline.drain()
        if {r["State"] for r in _rows(pipeline, names)} <= {"done", "failed", "rejected"}:
            return True
        clock.advance(minutes=5)
        return False

    try:
        wait_for(step, timeout=timeout, interval=0.1, what="the jobs to settle")
    except TimeoutError:
        left = [(r["BlobName"], r["State"]) for r in _rows(pipeline, names)]
        raise AssertionError(f"jobs did not settle: {left}") from None


def test_throttled_submissions_are_deferred_then_submitted_by_the_poller(
    pipeline: Pipeline, clock: Clock, faults: Any
) -> None:
    names = [f"throttle/{i}.wav" for i in range(5)]
    blobs = [pipeline.upload(n, mono_call(), [["rate limited"]]) for n in names]
    faults(rate_limit="2/600")
    for blob in blobs:
        pipeline.submit(blob)  # never raises: a throttled blob must not reach poison
    states = sorted(r["State"] for r in _rows(pipeline, names))
    assert states == ["deferred"] * 3 + ["submitted"] * 2
    deferred = [r for r in _rows(pipeline, names) if r["State"] == "deferred"]
    assert {r["ErrorCode"] for r in deferred} == {"Throttled"}
    assert all(r["NextCheckAt"] > utc_now() for r in deferred)  # Retry-After honoured
    faults(rate_limit=None)
    _settle(pipeline, clock, names)
    assert {r["State"] for r in _rows(pipeline, names)} == {"done"}
    for name in names:
        assert f"{name}/channel_0.json" in pipeline.outputs()


def test_transient_service_failure_is_resubmitted_then_reported(
    pipeline: Pipeline, clock: Clock, faults: Any
) -> None:
    name = "transient/always-failing.wav"
    faults(fail_share=1.0, fail_code="InternalServerError")
    before = requests_by_route(pipeline.stats())
    pipeline.submit(pipeline.upload(name, mono_call(), [["x"]]))
    _settle(pipeline, clock, [name])
    made = delta(before, requests_by_route(pipeline.stats()))
    assert made[SUBMIT_ROUTE] == 3  # MAX_JOB_ATTEMPTS
    row = pipeline.record_for(name)
    assert row["State"] == "failed"
    assert row["Attempts"] == 3
    report = pipeline.error_report(f"{name}.json")
    assert report["serviceErrorCode"] == "InternalServerError"
    assert "3 attempts" in report["message"]
    # Every attempt's server-side transcription was deleted.
    attempts = [
        job_id
        for job_id, timeline in pipeline.stats()["jobs"].items()
        if timeline["displayName"] == row["RowKey"]
    ]
    assert len(attempts) == 3
    assert {pipeline.transcription_status(job_id) for job_id in attempts} == {404}


def test_transient_failure_then_success(pipeline: Pipeline, clock: Clock, faults: Any) -> None:
    name = "transient/fails-once.wav"
    faults(fail_share=1.0, fail_code="ServiceUnavailable")
    pipeline.submit(pipeline.upload(name, mono_call(), [["second time lucky"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    pipeline.drain()
    assert pipeline.record_for(name)["State"] == "deferred"
    faults(fail_share=0.0)
    _settle(pipeline, clock, [name])
    row = pipeline.record_for(name)
    assert (row["State"], row["Attempts"]) == ("done", 2)
    assert f"{name}.json" not in pipeline.errors()


def test_vanished_job_is_resubmitted(pipeline: Pipeline, clock: Clock, faults: Any) -> None:
    name = "vanish/once.wav"
    faults(vanish_share=1.0)
    pipeline.submit(pipeline.upload(name, mono_call(), [["where did it go"]]))
    first = pipeline.record_for(name)["TranscriptionId"]
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "deferred")
    assert pipeline.record_for(name)["ErrorCode"] == "Vanished"
    faults(vanish_share=0.0)
    _settle(pipeline, clock, [name])
    row = pipeline.record_for(name)
    assert row["State"] == "done"
    assert row["TranscriptionId"] != first


def test_transcription_vanished_before_completion_is_resubmitted(
    pipeline: Pipeline, clock: Clock
) -> None:
    name = "vanish/before completion.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["gone before saved"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    first = pipeline.record_for(name)["TranscriptionId"]
    pipeline.api.delete(f"/transcriptions/{first}").raise_for_status()  # e.g. its TTL ran out
    pipeline.drain()
    row = pipeline.record_for(name)
    assert (row["State"], row["ErrorCode"]) == ("deferred", "Vanished")
    assert row["ErrorMessage"] == f"transcription {first} disappeared before completion"
    assert row["NextCheckAt"] <= utc_now()  # due at once
    assert not any(o.startswith(f"{name}/") for o in pipeline.outputs())
    _settle(pipeline, clock, [name])
    row = pipeline.record_for(name)
    assert (row["State"], row["Attempts"]) == ("done", 2)
    assert row["TranscriptionId"] != first
    assert f"{name}.json" not in pipeline.errors()


def test_recording_overwritten_before_its_stalled_job_was_submitted_is_superseded(
    pipeline: Pipeline,
) -> None:
    """The trigger's run stopped after recording the job; the blob is overwritten before
    the poller resumes it: that version is dropped, with no report and nothing submitted."""
    name = "overwrite/before submission.wav"
    blob = pipeline.upload(name, mono_call(), [["first version"]])
    props = blob.get_blob_properties()
    rt = runtime_for(get_settings())
    stalled = jobs.new_job(
        container=props.container,
        name=name,
        etag=str(props.etag),
        size=props.size,
        now=utc_now(),
        timeout=timedelta(hours=30),
        lease=timedelta(0),  # the run that held it crashed long ago
    )
    assert rt.store.create(stalled) is not None
    pipeline.upload(name, mono_call(), [["second version"]])
    before = requests_by_route(pipeline.stats())
    pipeline.poll()
    row = pipeline.table.get_entity("job", stalled.key)
    assert (row["State"], row["ErrorCode"]) == ("rejected", "Superseded")
    assert row["ErrorMessage"] == "the blob was overwritten before this version was submitted"
    assert f"{name}.json" not in pipeline.errors()
    assert SUBMIT_ROUTE not in delta(before, requests_by_route(pipeline.stats()))


def test_job_past_its_deadline_is_deleted_and_reported(
    pipeline: Pipeline, clock: Clock, faults: Any
) -> None:
    name = "timeout/stuck.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["too slow"]]))
    row = pipeline.record_for(name)
    clock.advance(hours=31)  # JOB_TIMEOUT_HOURS defaults to 30
    pipeline.poll()
    final = pipeline.record_for(name)
    assert final["State"] == "failed"
    report = pipeline.error_report(f"{name}.json")
    assert report["reasonCode"] == "TimedOut"
    assert "JOB_TIMEOUT_HOURS" in report["message"]
    assert pipeline.transcription_status(row["TranscriptionId"]) == 404


def test_lost_completion_message_is_enqueued_again(pipeline: Pipeline, clock: Clock) -> None:
    name = "lease/lost-message.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["lost and found"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    key = pipeline.record_for(name)["RowKey"]
    pipeline.message_for(key)  # taken and lost (a crash before completing it)
    pipeline.poll()
    assert pipeline.receive() == []  # within the lease: no duplicate
    clock.advance(minutes=11)
    pipeline.poll()
    pipeline.complete(pipeline.message_for(key))
    assert pipeline.record_for(name)["State"] == "done"


def test_failed_trigger_run_releases_the_job_for_the_retry(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "release/retry.wav"
    blob = pipeline.upload(name, mono_call(), [["retried"]])
    rt = runtime_for(get_settings())

    def storage_down(*_args: Any, **_kwargs: Any) -> str:
        raise StorageTransientError("get user delegation key: Storage answered HTTP 503")

    with monkeypatch.context() as patch:
        patch.setattr(rt.content_urls, "url_for", storage_down)
        with pytest.raises(StorageTransientError):
            pipeline.submit(blob)  # the host will retry this run
    row = pipeline.record_for(name)
    assert row["State"] == "received"
    assert row["NextCheckAt"] <= utc_now()  # not held for the whole lease
    assert row["NeedsLookup"] is True
    pipeline.submit(blob)  # the host's retry
    assert pipeline.record_for(name)["State"] == "submitted"
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    pipeline.drain()
    assert pipeline.record_for(name)["State"] == "done"


def test_crash_after_delete_before_record_update_converges(pipeline: Pipeline) -> None:
    name = "crash/after-delete.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["crash after delete"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    stale = dict(pipeline.record_for(name))
    message = pipeline.message_for(stale["RowKey"])
    pipeline.complete(message)
    outputs = {o: pipeline.output(o) for o in pipeline.outputs() if o.startswith(f"{name}/")}
    assert pipeline.transcription_status(stale["TranscriptionId"]) == 404
    # Put the row back as the crashed run left it: outputs written, job deleted, still completing.
    pipeline.table.upsert_entity(stale, mode=UpdateMode.REPLACE)
    before = requests_by_route(pipeline.stats())
    pipeline.complete(message)  # the queue delivers the message again
    made = delta(before, requests_by_route(pipeline.stats()))
    assert SUBMIT_ROUTE not in made  # no resubmission
    assert pipeline.record_for(name)["State"] == "done"
    assert {o: pipeline.output(o) for o in outputs} == outputs


def test_unreadable_recording_with_a_valid_sas_is_confirmed_once_then_reported_as_set_up(
    pipeline: Pipeline, clock: Clock, faults: Any
) -> None:
    name = "access/unreadable.wav"
    faults(fail_share=1.0, fail_code="InvalidRecordingsUri")
    pipeline.submit(pipeline.upload(name, mono_call(), [["x"]]))
    _settle(pipeline, clock, [name])
    row = pipeline.record_for(name)
    # The input is unchanged and its SAS was still valid each time the job failed: not a
    # passing outage (the second submission failed too) but a set-up that refuses SAS.
    # The third attempt MAX_JOB_ATTEMPTS allows is not spent on it.
    assert (row["State"], row["Attempts"]) == ("failed", 2)
    report = pipeline.error_report(f"{name}.json")
    assert report["reasonCode"] == "SasRefused"
    assert report["serviceErrorCode"] == "InvalidRecordingsUri"
    assert "SPEECH_STORAGE_ACCESS=sas" in report["message"]
    assert "in 2 attempts" in report["message"]
    assert "not the recording's fault" in report["message"]
    assert "SPEECH_STORAGE_ACCESS=identity" in report["whatToDo"]


def test_unreadable_recording_during_a_storage_outage_is_transcribed_on_resubmission(
    pipeline: Pipeline, clock: Clock, faults: Any
) -> None:
    name = "access/outage.wav"
    faults(fail_share=1.0, fail_code="InvalidRecordingsUri")
    pipeline.submit(pipeline.upload(name, mono_call(), [["back again"]]))
    first = pipeline.record_for(name)["TranscriptionId"]
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    faults(fail_share=0.0)  # storage is reachable again
    pipeline.drain()
    row = pipeline.record_for(name)
    assert (row["State"], row["ErrorCode"]) == ("deferred", "InvalidRecordingsUri")
    assert "submitted once more" in row["ErrorMessage"]
    _settle(pipeline, clock, [name])
    row = pipeline.record_for(name)
    assert (row["State"], row["Attempts"]) == ("done", 2)
    assert row["TranscriptionId"] != first


def test_recording_deleted_while_its_job_runs(pipeline: Pipeline, faults: Any) -> None:
    name = "access/deleted while running.wav"
    faults(fail_share=1.0, fail_code="InvalidRecordingsUri")
    blob = pipeline.upload(name, mono_call(), [["x"]])
    pipeline.submit(blob)
    blob.delete_blob()
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    pipeline.drain()
    assert pipeline.record_for(name)["State"] == "failed"
    report = pipeline.error_report(f"{name}.json")
    assert report["reasonCode"] == "InputDeleted"
    assert report["serviceErrorCode"] == "InvalidRecordingsUri"


def test_sas_expired_in_the_service_queue_is_resubmitted_with_a_fresh_one(
    pipeline: Pipeline, clock: Clock, faults: Any
) -> None:
    name = "access/late start.wav"
    faults(fail_share=1.0, fail_code="InvalidRecordingsUri")
    pipeline.submit(pipeline.upload(name, mono_call(), [["fresh sas"]]))
    first = pipeline.record_for(name)["TranscriptionId"]
    # The job is seen failed 3 h after its submission, longer than SAS_VALIDITY_HOURS (2):
    # the SAS may have run out while the job waited in the service's queue.
    clock.advance(hours=3)
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    faults(fail_share=0.0)
    pipeline.drain()
    row = pipeline.record_for(name)
    assert (row["State"], row["ErrorCode"]) == ("deferred", "InvalidRecordingsUri")
    _settle(pipeline, clock, [name])
    row = pipeline.record_for(name)
    assert (row["State"], row["Attempts"]) == ("done", 2)
    assert row["TranscriptionId"] != first


def test_outcome_of_a_resubmission_lost_to_a_storage_outage_is_adopted(
    pipeline: Pipeline, clock: Clock, faults: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throttled, then resubmitted; the POST succeeds but Storage fails before it is recorded.

    The next run must find that transcription by displayName instead of posting again.
    """
    name = "outage/resubmitted.wav"
    blob = pipeline.upload(name, mono_call(), [["recorded once"]])
    faults(rate_limit="1/600")
    pipeline.api.get("/transcriptions")  # use up the one request the limit allows
    pipeline.submit(blob)
    assert pipeline.record_for(name)["State"] == "deferred"
    faults(rate_limit=None)

    rt = runtime_for(get_settings())
    real_save = rt.store.save
    outage = {"on": False}

    def save(previous: jobs.JobRecord, record: jobs.JobRecord) -> jobs.JobRecord:
        if record.state is jobs.JobState.SUBMITTED:
            outage["on"] = True  # Storage goes down right after the POST
        if outage["on"]:
            raise StorageTransientError("update job: Storage answered HTTP 503")
        return real_save(previous, record)

    before = requests_by_route(pipeline.stats())
    clock.advance(hours=1)
    with monkeypatch.context() as patch:
        patch.setattr(rt.store, "save", save)
        pipeline.poll()  # resubmits; the outcome is lost
    assert pipeline.record_for(name)["State"] == "deferred"
    clock.advance(hours=1)  # past the claim's lease
    _settle(pipeline, clock, [name])
    made = delta(before, requests_by_route(pipeline.stats()))
    assert made[SUBMIT_ROUTE] == 1  # adopted, never posted twice
    row = pipeline.record_for(name)
    assert (row["State"], row["Attempts"]) == ("done", 1)
