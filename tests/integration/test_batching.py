"""Batching end to end on Azurite and the local Speech service: many recordings per job.

Recordings are queued for a batch the way a backlog starts: Speech answers 429 to a single
submission (the emulator's own rate limit, used up on purpose), and every recording that
follows within two windows is queued too. The batch run comes from the poller (its safety
net for queued jobs) with the app's clock moved past the window, so no test waits on time.
A "kill" is an exception no code of the app catches (`Killed`, a BaseException), raised
from the storage write the test targets: what was written stays, nothing after it runs.
Each test ends with exactly one outcome per recording version and no service job left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from devhost.services import wait_for
from shared import batches, jobs
from shared.batch_admission import admission
from shared.retry import set_testing
from shared.runtime import Runtime, runtime_for
from shared.settings import get_settings
from shared.sweep import SweepLimits, run_sweep
from tests.integration.harness import Clock, Pipeline, delta, mono_call, requests_by_route

pytestmark = pytest.mark.integration

PIPELINE_ENV = {"BATCH_MAX_FILES": "10", "BATCH_WINDOW_SECONDS": "0.5"}
SUBMIT_ROUTE = "POST /speechtotext/transcriptions:submit"
ENDED = ("done", "failed", "rejected")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")  # one per recording


class Killed(BaseException):
    """The process dies here: no `except Exception` of the app stops it."""


@pytest.fixture
def rt(pipeline: Pipeline) -> Runtime:
    return runtime_for(get_settings())


@pytest.fixture
def clock(rt: Runtime) -> Iterator[Clock]:
    original = rt.clock
    fake = Clock()
    rt.clock = fake
    admission().reset()
    try:
        yield fake
    finally:
        rt.clock = original
        admission().reset()


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    with set_testing(True, attempts=2, cap=True):
        yield


def queue_recordings(pipeline: Pipeline, names: list[str]) -> None:
    """Upload and trigger `names`; the first single POST is throttled, so all are queued."""
    blobs = [pipeline.upload(n, mono_call(), [[WORDS[i]]]) for i, n in enumerate(names)]
    pipeline.configure(rate_limit="1/600")
    try:
        pipeline.api.get("/transcriptions")  # the one request the limit allows
        for blob in blobs:
            pipeline.submit(blob)
    finally:
        pipeline.configure(rate_limit=None)
    states = {pipeline.record_for(n)["State"] for n in names}
    assert states == {"queued"}, states


def batch_of(pipeline: Pipeline, names: list[str]) -> Any:
    """The one batch row holding the jobs of `names`."""
    keys = {r["RowKey"] for r in rows(pipeline, names).values()}
    (batch,) = [b for b in pipeline.batch_rows() if keys & set(b["Members0"].split(","))]
    return batch


def completing(pipeline: Pipeline, names: list[str]) -> bool:
    keys = {r["RowKey"] for r in rows(pipeline, names).values()}
    return any(
        b["State"] == "completing" and keys & set(b["Members0"].split(","))
        for b in pipeline.batch_rows()
    )


def take_batch_message(pipeline: Pipeline) -> Any:
    """The one batch completion message queued; other messages (wake-ups) are run."""
    mine = []
    for message in pipeline.receive():
        if "batch_key" in json.loads(message.get_body()):
            mine.append(message)
        else:
            pipeline.complete(message)
    (message,) = mine
    return message


def rows(pipeline: Pipeline, names: list[str]) -> dict[str, Any]:
    return {r["BlobName"]: r for r in pipeline.records() if r["BlobName"] in names}


def settle(pipeline: Pipeline, clock: Clock, names: list[str], timeout: float = 60) -> None:
    """Poll, complete and move the clock on until every job of `names` has ended."""

    def step() -> bool:
        pipeline.poll()
        pipeline.drain()
        if all(r["State"] in ENDED for r in pipeline.records() if r["BlobName"] in names):
            return True
        clock.advance(minutes=2)
        return False

    wait_for(step, timeout=timeout, interval=0.05, what="the jobs to end")


def one_outcome_each(pipeline: Pipeline, names: list[str]) -> dict[str, str]:
    """Each recording: one job, outputs xor an error report (none when superseded); no
    service job left and every batch closed. Returns the states."""
    found = rows(pipeline, names)
    assert sorted(found) == sorted(names)
    outputs = {o.rsplit("/", 1)[0] for o in pipeline.outputs() if o.endswith("/channel_0.json")}
    reports = {e.removesuffix(".json") for e in pipeline.errors()}
    for name, row in found.items():
        assert (name in outputs) == (row["State"] == "done"), (name, row["State"])
        assert (name in reports) == (row["State"] in ("failed", "rejected")), name
    assert pipeline.live_transcriptions() == []  # nothing left on the service
    assert {b["State"] for b in pipeline.batch_rows()} <= {"done"}
    return {n: r["State"] for n, r in found.items()}


def test_a_lone_recording_is_submitted_on_its_own_at_once(pipeline: Pipeline, clock: Clock) -> None:
    name = "trickle/alone.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["just me"]]))
    row = pipeline.record_for(name)
    # Submitted by the trigger run itself: its own transcription, named after its own job.
    assert row["State"] == "submitted"
    job = pipeline.api.get(f"/transcriptions/{row['TranscriptionId']}").json()
    assert job["displayName"] == row["RowKey"]
    assert pipeline.batch_rows() == []
    settle(pipeline, clock, [name])
    assert one_outcome_each(pipeline, [name]) == {name: "done"}


def test_a_backlog_shares_one_job_and_one_failed_file_is_retried_on_its_own(
    pipeline: Pipeline, clock: Clock, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"backlog/{i} call.wav" for i in range(4)]
    queue_recordings(pipeline, names)
    real_submit = rt.speech.submit
    spoiled = {"url": ""}

    def submit(body: dict[str, Any]) -> Any:
        urls = body["contentUrls"]
        if len(urls) > 1 and not spoiled["url"]:
            # One file's SAS is refused by Storage (as if it expired in the service's queue):
            # the report marks that file failed; the recording itself is fine.
            spoiled["url"] = urls[1]
            body = {**body, "contentUrls": [*urls[:1], urls[1] + "0", *urls[2:]]}
        return real_submit(body)

    monkeypatch.setattr(rt.speech, "submit", submit)
    before = requests_by_route(pipeline.stats())
    settle(pipeline, clock, names)
    made = delta(before, requests_by_route(pipeline.stats()))
    states = one_outcome_each(pipeline, names)
    assert states == dict.fromkeys(names, "done")
    batch = batch_of(pipeline, names)
    assert (batch["State"], batch["MemberCount"]) == ("done", 4)
    # One POST for the four, one more for the failed file alone.
    assert made[SUBMIT_ROUTE] == 2
    retried = [r for r in rows(pipeline, names).values() if r["Attempts"] == 2]
    assert len(retried) == 1
    assert spoiled["url"].split("?")[0].endswith(retried[0]["BlobName"].replace(" ", "%20"))
    for i, name in enumerate(names):  # each recording got its own words (by source URL)
        assert WORDS[i] in pipeline.output(f"{name}/transcript.txt").decode().lower()


def test_a_recording_deleted_in_a_batch_is_reported_alone(
    pipeline: Pipeline, clock: Clock, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"deleted/{i}.wav" for i in range(3)]
    queue_recordings(pipeline, names)
    real_submit = rt.speech.submit

    def submit(body: dict[str, Any]) -> Any:
        if len(body["contentUrls"]) > 1:
            pipeline.blob_service.get_blob_client(
                pipeline.env["INPUT_CONTAINER"], names[0]
            ).delete_blob()
        return real_submit(body)

    monkeypatch.setattr(rt.speech, "submit", submit)
    settle(pipeline, clock, names)
    states = one_outcome_each(pipeline, names)
    assert states == {names[0]: "rejected", names[1]: "done", names[2]: "done"}
    assert pipeline.error_report(f"{names[0]}.json")["reasonCode"] == "InputDeleted"


def test_a_kill_between_the_batch_post_and_recording_it_is_adopted(
    pipeline: Pipeline, clock: Clock, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"killpost/{i}.wav" for i in range(3)]
    queue_recordings(pipeline, names)
    real_save = rt.batches.save

    def save(previous: batches.BatchRecord, batch: batches.BatchRecord) -> Any:
        if batch.state is batches.BatchState.SUBMITTED:
            raise Killed  # the POST went out; the process dies before recording it
        return real_save(previous, batch)

    before = requests_by_route(pipeline.stats())
    clock.advance(seconds=5)  # past the window and the queued jobs' safety net
    with monkeypatch.context() as patch:
        patch.setattr(rt.batches, "save", save)
        with pytest.raises(Killed):
            pipeline.poll()
    batch = batch_of(pipeline, names)
    assert (batch["State"], batch["MemberCount"]) == ("posting", 3)
    assert {r["State"] for r in rows(pipeline, names).values()} == {"batched"}
    clock.advance(seconds=get_settings().job_lease_seconds + 1)  # the dead run's lease
    settle(pipeline, clock, names)
    made = delta(before, requests_by_route(pipeline.stats()))
    assert made[SUBMIT_ROUTE] == 1  # adopted by displayName, never posted twice
    assert one_outcome_each(pipeline, names) == dict.fromkeys(names, "done")
    assert all(r["Attempts"] == 1 for r in rows(pipeline, names).values())


def test_a_kill_halfway_through_a_batchs_outputs_finishes_the_rest_once(
    pipeline: Pipeline, clock: Clock, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"killout/{i}.wav" for i in range(4)]
    queue_recordings(pipeline, names)
    clock.advance(seconds=5)
    pipeline.poll_until(lambda: completing(pipeline, names), timeout=30)
    message = take_batch_message(pipeline)
    real_save = rt.store.save
    marked = {"done": 0}

    def save(previous: jobs.JobRecord, record: jobs.JobRecord) -> jobs.JobRecord:
        if record.state is jobs.JobState.DONE:
            marked["done"] += 1
            if marked["done"] == 2:
                raise Killed  # dies after one recording is done, before the second's mark
        return real_save(previous, record)

    with monkeypatch.context() as patch:
        patch.setattr(rt.store, "save", save)
        with pytest.raises(Killed):
            pipeline.complete(message)
    after_kill = rows(pipeline, names)
    done_first = {n for n, r in after_kill.items() if r["State"] == "done"}
    assert 1 <= len(done_first) < len(names)
    batch = batch_of(pipeline, names)
    assert (batch["State"], batch["MemberCount"]) == ("completing", 4)
    # The service job is not deleted while recordings of it are unsettled.
    assert pipeline.transcription_status(batch["TranscriptionId"]) == 200
    clock.advance(seconds=get_settings().job_lease_seconds + 1)  # the lost message's lease
    settle(pipeline, clock, names)
    assert one_outcome_each(pipeline, names) == dict.fromkeys(names, "done")
    later = rows(pipeline, names)
    for name in done_first:  # done recordings were left alone by the redelivery
        assert later[name].metadata["etag"] == after_kill[name].metadata["etag"]
    assert pipeline.transcription_status(batch["TranscriptionId"]) == 404


def test_a_recording_overwritten_while_its_batch_runs_is_superseded(
    pipeline: Pipeline, clock: Clock
) -> None:
    names = [f"overwrite/{i}.wav" for i in range(3)]
    queue_recordings(pipeline, names)
    old_key = pipeline.record_for(names[0])["RowKey"]
    clock.advance(seconds=5)
    pipeline.poll_until(lambda: completing(pipeline, names), timeout=30)
    # A newer version lands before the batch's outputs are written: it has its own job.
    pipeline.submit(pipeline.upload(names[0], mono_call(), [["the newer words"]]))
    settle(pipeline, clock, names)
    versions = [r for r in pipeline.records() if r["BlobName"] == names[0]]
    assert len(versions) == 2
    old = next(r for r in versions if r["RowKey"] == old_key)
    new = next(r for r in versions if r["RowKey"] != old_key)
    assert (old["State"], old["ErrorCode"]) == ("rejected", "Superseded")
    assert new["State"] == "done"
    assert b"The newer words" in pipeline.output(f"{names[0]}/transcript.txt")
    assert f"{names[0]}.json" not in pipeline.errors()  # superseded: no report
    states = {r["BlobName"]: r["State"] for r in pipeline.records() if r["BlobName"] in names[1:]}
    assert states == dict.fromkeys(names[1:], "done")
    assert pipeline.live_transcriptions() == []
    assert {b["State"] for b in pipeline.batch_rows()} <= {"done"}


def test_recordings_the_sweep_found_late_share_one_job(
    pipeline: Pipeline, clock: Clock, rt: Runtime
) -> None:
    # A host far behind on a backlog: these recordings' triggers have not run when the sweep
    # finds them, and it hands them all to the poller (its own submit budget spent).
    names = [f"late/{i}.wav" for i in range(4)]
    for i, name in enumerate(names):
        pipeline.upload(name, mono_call(), [[WORDS[i]]])
    report = run_sweep(rt, SweepLimits(grace=timedelta(0), max_submitted=0))
    assert sorted(report.handed_to_poller) == sorted(names)
    before = requests_by_route(pipeline.stats())
    settle(pipeline, clock, names)
    made = delta(before, requests_by_route(pipeline.stats()))
    assert one_outcome_each(pipeline, names) == dict.fromkeys(names, "done")
    # One Speech job for the four, as for any backlog; not four jobs of one.
    assert made[SUBMIT_ROUTE] == 1
    assert batch_of(pipeline, names)["MemberCount"] == 4
    for i, name in enumerate(names):
        assert WORDS[i] in pipeline.output(f"{name}/transcript.txt").decode().lower()
