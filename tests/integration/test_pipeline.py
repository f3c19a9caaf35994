"""End to end through function_app: blob trigger -> poll -> completion, real Azurite + emulator."""

from __future__ import annotations

import base64
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from azure.functions.queue import QueueMessage

from devhost.services import DEV_ACCOUNT_KEY, wait_for
from shared import jobs
from shared.runtime import runtime_for
from shared.settings import get_settings
from tests.integration.harness import (
    Pipeline,
    delta,
    mono_call,
    requests_by_route,
    stereo_call,
)

pytestmark = pytest.mark.integration

SUBMIT_ROUTE = "POST /speechtotext/transcriptions:submit"
LIST_ROUTE = "GET /speechtotext/transcriptions"
GET_ROUTE = "GET /speechtotext/transcriptions/{id}"


def _state(pipeline: Pipeline, name: str) -> str:
    return str(pipeline.record_for(name)["State"])


def _run_to_completing(pipeline: Pipeline, name: str) -> Any:
    pipeline.poll_until(lambda: _state(pipeline, name) == "completing")
    return pipeline.record_for(name)


def _phrase_channels(doc: dict) -> set[int]:
    return {p.get("channel", 0) for p in doc["recognizedPhrases"]}


def test_mono_recording_end_to_end(pipeline: Pipeline) -> None:
    name = "calls/2026/mono call #1.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["hello there", "how are you"]]))
    row = pipeline.record_for(name)
    assert row["State"] == "submitted"
    assert row["Channels"] == 1
    assert "?" not in row["TranscriptionUrl"]  # stored without the SAS query
    row = _run_to_completing(pipeline, name)
    expected_raw = pipeline.result_file_bytes(row["TranscriptionId"])

    raw_message = pipeline.raw_queue.peek_messages()[0].content
    assert json.loads(base64.b64decode(raw_message)) == {"job_key": row["RowKey"]}

    assert len(pipeline.drain()) == 1
    assert _state(pipeline, name) == "done"
    assert pipeline.output(f"{name}/result.json") == expected_raw
    channel_0 = json.loads(pipeline.output(f"{name}/channel_0.json"))
    assert _phrase_channels(channel_0) == {0}
    assert [p["nBest"][0]["lexical"] for p in channel_0["recognizedPhrases"]] == [
        "hello there",
        "how are you",
    ]
    outputs = pipeline.outputs()
    assert f"{name}/channel_1.json" not in outputs
    for product in ("transcript.json", "transcript.txt", "transcript.vtt", "transcript.srt"):
        assert f"{name}/{product}" in outputs
    assert pipeline.transcription_status(row["TranscriptionId"]) == 404  # deleted server-side


def test_stereo_recording_gets_one_file_per_channel(pipeline: Pipeline) -> None:
    name = "stereo/agent and customer ü%?.wav"
    script = [["thank you for calling", "goodbye"], ["my card is blocked"]]
    pipeline.submit(pipeline.upload(name, stereo_call(), script))
    row = _run_to_completing(pipeline, name)
    assert row["Channels"] == 2
    expected_raw = pipeline.result_file_bytes(row["TranscriptionId"])
    pipeline.drain()

    assert _state(pipeline, name) == "done"
    assert pipeline.output(f"{name}/result.json") == expected_raw
    for channel, phrases in enumerate(script):
        doc = json.loads(pipeline.output(f"{name}/channel_{channel}.json"))
        assert _phrase_channels(doc) == {channel}
        assert [p["nBest"][0]["lexical"] for p in doc["recognizedPhrases"]] == phrases
        assert {c["channel"] for c in doc["combinedRecognizedPhrases"]} == {channel}
    text = pipeline.output(f"{name}/transcript.txt").decode().lower()
    # The merged conversation is in time order and labels each channel.
    assert text.index("thank you for calling") < text.index("my card is blocked")
    assert text.index("my card is blocked") < text.index("goodbye")
    assert "agent:" in text
    assert "customer:" in text
    assert pipeline.transcription_status(row["TranscriptionId"]) == 404


def test_duplicate_trigger_creates_nothing_new(pipeline: Pipeline) -> None:
    name = "dup/twice.wav"
    blob = pipeline.upload(name, mono_call(), [["once only"]])
    before = requests_by_route(pipeline.stats())
    pipeline.submit(blob)
    pipeline.submit(blob)  # the host delivers at least once
    made = delta(before, requests_by_route(pipeline.stats()))
    assert made.get(SUBMIT_ROUTE) == 1
    assert len([r for r in pipeline.records() if r["BlobName"] == name]) == 1
    _run_to_completing(pipeline, name)
    pipeline.drain()
    assert _state(pipeline, name) == "done"


def test_reupload_is_a_new_job(pipeline: Pipeline) -> None:
    name = "reupload/call.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["first version"]]))
    first = pipeline.record_for(name)
    pipeline.poll_until(lambda: _state(pipeline, name) == "completing")
    pipeline.drain()
    pipeline.submit(pipeline.upload(name, mono_call(), [["second version"]]))
    rows = [r for r in pipeline.records() if r["BlobName"] == name]
    assert len(rows) == 2
    second = next(r for r in rows if r["RowKey"] != first["RowKey"])
    assert second["BlobETag"] != first["BlobETag"]
    assert second["State"] == "submitted"
    pipeline.poll_until(
        lambda: pipeline.table.get_entity("job", second["RowKey"])["State"] == "completing"
    )
    pipeline.drain()
    doc = json.loads(pipeline.output(f"{name}/channel_0.json"))
    assert doc["recognizedPhrases"][0]["nBest"][0]["lexical"] == "second version"


def test_failed_job_gets_an_error_report(pipeline: Pipeline) -> None:
    name = "failing/undecodable.wav"
    pipeline.configure(fail_share=1.0, fail_code="InvalidAudioFormat")
    try:
        pipeline.submit(pipeline.upload(name, mono_call(), [["never transcribed"]]))
        row = _run_to_completing(pipeline, name)
    finally:
        pipeline.configure(fail_share=0.0, fail_code="InternalServerError")
    pipeline.drain()
    final = pipeline.record_for(name)
    assert final["State"] == "failed"
    report = pipeline.error_report(f"{name}.json")
    assert report["outcome"] == "failed"
    assert report["serviceErrorCode"] == "InvalidAudioFormat"
    assert report["reasonCode"] == "InvalidAudioFormat"
    assert report["jobKey"] == row["RowKey"]
    assert report["message"]
    assert "sig=" not in json.dumps(report)
    assert not [o for o in pipeline.outputs() if o.startswith(f"{name}/")]
    assert pipeline.transcription_status(row["TranscriptionId"]) == 404


def test_bad_input_is_rejected_with_a_report_and_the_trigger_succeeds(pipeline: Pipeline) -> None:
    name = "bad/not audio.wav"
    before = requests_by_route(pipeline.stats())
    pipeline.submit(pipeline.upload(name, b"this is a text file, not a recording " * 20))
    assert _state(pipeline, name) == "rejected"
    report = pipeline.error_report(f"{name}.json")
    assert report["outcome"] == "rejected"
    assert report["reasonCode"] == "NotAudio"
    assert report["whatToDo"]
    assert SUBMIT_ROUTE not in delta(before, requests_by_route(pipeline.stats()))


def test_completion_message_twice_is_harmless(pipeline: Pipeline) -> None:
    name = "twice/complete.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["complete me twice"]]))
    _run_to_completing(pipeline, name)
    message = pipeline.message_for(pipeline.record_for(name)["RowKey"])
    pipeline.complete(message)
    first = {o: pipeline.output(o) for o in pipeline.outputs() if o.startswith(f"{name}/")}
    done = pipeline.record_for(name)
    before = requests_by_route(pipeline.stats())
    pipeline.complete(message)  # the queue delivers at least once
    assert delta(before, requests_by_route(pipeline.stats())) == {}
    assert {o: pipeline.output(o) for o in first} == first
    again = pipeline.record_for(name)
    assert again["State"] == "done"
    assert again.metadata["etag"] == done.metadata["etag"]


def test_crash_after_post_is_adopted_not_resubmitted(pipeline: Pipeline) -> None:
    """A run died between the POST and the record update: the next run finds the job."""
    name = "crash/after-post.wav"
    blob = pipeline.upload(name, mono_call(), [["adopt me"]])
    rt = runtime_for(get_settings())
    props = blob.get_blob_properties()
    now = rt.clock()
    stalled = jobs.new_job(
        container=blob.container_name,
        name=name,
        etag=str(props.etag),
        size=props.size,
        now=now - timedelta(minutes=20),
        timeout=timedelta(hours=30),
        lease=timedelta(minutes=11),
    )
    assert rt.store.create(stalled) is not None
    orphan = pipeline.api.post(
        "/transcriptions:submit",
        json={
            "displayName": stalled.key,
            "locale": "en-US",
            "contentUrls": [
                rt.signer.read_url(blob.container_name, name, now=now, validity=timedelta(hours=1))
            ],
            "properties": {"timeToLiveHours": 6, "channels": [0]},
        },
    )
    assert orphan.status_code == 201
    before = requests_by_route(pipeline.stats())
    pipeline.submit(blob)  # the host retries the trigger whose run died
    assert SUBMIT_ROUTE not in delta(before, requests_by_route(pipeline.stats()))
    row = pipeline.record_for(name)
    assert row["State"] == "submitted"
    assert f"/transcriptions/{row['TranscriptionId']}?" in orphan.json()["self"]
    _run_to_completing(pipeline, name)
    pipeline.drain()
    assert _state(pipeline, name) == "done"


@pytest.mark.slow
def test_many_active_jobs_are_polled_through_paging(pipeline: Pipeline) -> None:
    count = 120
    names = [f"bulk/{i:03d}.wav" for i in range(count)]
    audio = mono_call()
    blobs = [pipeline.upload(name, audio, [["bulk call"]]) for name in names]
    with ThreadPoolExecutor(max_workers=8) as pool:  # the host runs triggers in parallel
        list(pool.map(pipeline.submit, blobs))

    def all_finished() -> bool:
        jobs = pipeline.stats()["jobs"]
        keys = {r["RowKey"] for r in pipeline.records() if r["BlobName"] in names}
        finished = [j for j in jobs.values() if j["displayName"] in keys and j["finished"]]
        return len(finished) == count

    wait_for(all_finished, timeout=60, interval=0.2, what="the emulator to finish 120 jobs")
    before = requests_by_route(pipeline.stats())
    pipeline.poll()
    made = delta(before, requests_by_route(pipeline.stats()))
    # ~ active/100 list pages, not one GET per job.
    assert 1 <= made.get(LIST_ROUTE, 0) <= 3, made
    assert made.get(GET_ROUTE, 0) <= 3, made
    states = {r["State"] for r in pipeline.records() if r["BlobName"] in names}
    assert states == {"completing"}
    assert len(pipeline.drain(workers=8)) == count
    assert {r["State"] for r in pipeline.records() if r["BlobName"] in names} == {"done"}


def test_full_run_logs_no_secret(pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    name = "secrets/check.wav"
    with caplog.at_level(logging.DEBUG):
        pipeline.submit(pipeline.upload(name, mono_call(), [["no secrets here"]]))
        _run_to_completing(pipeline, name)
        pipeline.drain()
    assert _state(pipeline, name) == "done"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "job=" in text
    assert name in text
    for secret in ("sig=", DEV_ACCOUNT_KEY, pipeline.emulator.key, "AccountKey"):
        assert secret not in text


def test_blob_deleted_before_the_trigger_runs(pipeline: Pipeline) -> None:
    name = "gone/before-trigger.wav"
    blob = pipeline.upload(name, mono_call(), [["too late"]])
    blob.delete_blob()
    pipeline.submit(blob)  # succeeds, records nothing
    assert not [r for r in pipeline.records() if r["BlobName"] == name]


def test_completion_pushed_before_the_poller_saw_the_end(pipeline: Pipeline) -> None:
    """A completion message for a job still `submitted` (e.g. from a web hook) finishes it."""
    name = "push/early.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["pushed"]]))
    row = pipeline.record_for(name)
    wait_for(
        lambda: (
            pipeline.api.get(f"/transcriptions/{row['TranscriptionId']}").json()["status"]
            == "Succeeded"
        ),
        timeout=30,
        what="the emulator to finish the job",
    )
    assert row["State"] == "submitted"
    pipeline.complete(
        QueueMessage(id="m1", body=json.dumps({"job_key": row["RowKey"]}).encode(), pop_receipt="p")
    )
    assert _state(pipeline, name) == "done"
    assert f"{name}/channel_0.json" in pipeline.outputs()
    pipeline.drain()  # the message the early completion also enqueued finds the job done
    assert _state(pipeline, name) == "done"


def test_malformed_completion_message_is_dropped(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """Retrying cannot fix these: each run succeeds (so the host deletes the message), says
    why in an error log, and touches nothing: no job, output, report, message or Speech call."""

    def state() -> tuple[Any, ...]:
        return (
            sorted((r["RowKey"], r["State"]) for r in pipeline.records()),
            pipeline.outputs(),
            pipeline.errors(),
            [m.content for m in pipeline.raw_queue.peek_messages(max_messages=32)],
            requests_by_route(pipeline.stats()),
        )

    bodies = {
        b"not json": "dropped a malformed message: not JSON",
        b'{"job_key": 1}': "dropped a malformed message: no job_key",
        b'{"job_key": "tj-unknown"}': "job=tj-unknown: completion for an unknown job; dropped",
    }
    runtime_for(get_settings()).ensure_resources()  # as the first run would (a lone test)
    before = state()
    for body, reason in bodies.items():
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="shared.complete"):
            pipeline.complete(QueueMessage(id="m", body=body, pop_receipt="p"))  # no exception
        assert [r.getMessage() for r in caplog.records if reason in r.getMessage()], (body, reason)
    assert state() == before


def test_overwritten_while_transcribing_leaves_the_outputs_to_the_newer_version(
    pipeline: Pipeline,
) -> None:
    name = "overwrite/while running.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["first version"]]))
    old_key = pipeline.record_for(name)["RowKey"]
    _run_to_completing(pipeline, name)
    late = pipeline.message_for(old_key)  # the old version's completion is held back
    pipeline.submit(pipeline.upload(name, mono_call(), [["second version"]]))
    new_key = next(
        r["RowKey"] for r in pipeline.records() if r["BlobName"] == name and r["RowKey"] != old_key
    )
    pipeline.poll_until(lambda: pipeline.table.get_entity("job", new_key)["State"] == "completing")
    pipeline.drain()
    pipeline.complete(late)
    old = pipeline.table.get_entity("job", old_key)
    assert (old["State"], old["ErrorCode"]) == ("rejected", "Superseded")
    assert pipeline.table.get_entity("job", new_key)["State"] == "done"
    doc = json.loads(pipeline.output(f"{name}/channel_0.json"))
    assert doc["recognizedPhrases"][0]["nBest"][0]["lexical"] == "second version"
    assert f"{name}.json" not in pipeline.errors()
    assert pipeline.transcription_status(old["TranscriptionId"]) == 404
