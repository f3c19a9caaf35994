"""The sweep end to end: missed triggers, bounded work, poison re-drive (Azurite + emulator)."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from devhost.services import Azurite, SpeechEmulator, wait_for
from shared.poison_messages import BLOB_TRIGGER_POISON_QUEUE
from shared.runtime import Runtime, runtime_for
from shared.settings import get_settings
from shared.sweep import CURSOR_PARTITION, SweepLimits, SweepReport, run_sweep
from tests.integration.harness import (
    Pipeline,
    delta,
    env_for,
    mono_call,
    requests_by_route,
    running_pipeline,
    stereo_call,
)

pytestmark = pytest.mark.integration

SUBMIT_ROUTE = "POST /speechtotext/transcriptions:submit"
NOW = SweepLimits(grace=timedelta(0), poison_visibility_s=1)


@pytest.fixture(scope="module")
def pipeline(azurite: Azurite, scripted_emulator: SpeechEmulator) -> Iterator[Pipeline]:
    env = env_for(azurite, scripted_emulator, "sw")
    env["POISON_REDRIVE_LIMIT"] = "2"
    with running_pipeline(azurite, scripted_emulator, env) as pipe:
        yield pipe


@pytest.fixture
def rt(pipeline: Pipeline) -> Runtime:
    return runtime_for(get_settings())


def _settle(pipeline: Pipeline, names: list[str]) -> None:
    def settled() -> bool:
        pipeline.poll()
        pipeline.drain()
        rows = [r for r in pipeline.records() if r["BlobName"] in names]
        return len(rows) == len(names) and all(
            r["State"] in ("done", "failed", "rejected") for r in rows
        )

    wait_for(settled, timeout=30, interval=0.1, what=f"{names} to settle")


def _clear_inputs(pipeline: Pipeline) -> None:
    """Each test sweeps the whole container: start from an empty one."""
    container = pipeline.blob_service.get_container_client(pipeline.env["INPUT_CONTAINER"])
    if container.exists():
        for blob in container.list_blobs():
            container.delete_blob(blob.name)


def test_the_timer_is_indexed_with_its_schedule(pipeline: Pipeline) -> None:
    assert "sweep" in pipeline.functions
    pipeline.functions["sweep"](timer=TimerRequest(past_due=False))  # grace: nothing new yet


def test_missed_triggers_are_submitted_once(pipeline: Pipeline, rt: Runtime) -> None:
    _clear_inputs(pipeline)
    seen = pipeline.upload("missed/seen.wav", mono_call(), [["already seen"]])
    pipeline.submit(seen)  # this one's trigger fired
    missed = {
        "missed/mono one.wav": mono_call(),
        "missed/stéréo #2.wav": stereo_call(),
        "missed/notes.txt": b"not a recording",
    }
    for name, data in missed.items():
        pipeline.upload(name, data, [["found by the sweep"], ["me too"]])
    before = requests_by_route(pipeline.stats())

    report = run_sweep(rt, NOW)

    assert sorted(report.missing) == sorted(missed)
    assert sorted(report.submitted) == sorted(missed)
    assert report.finished_listing
    assert delta(before, requests_by_route(pipeline.stats())).get(SUBMIT_ROUTE) == 2
    assert pipeline.record_for("missed/notes.txt")["ErrorCode"] == "UnsupportedExtension"
    again = run_sweep(rt, NOW)
    assert again.missing == []
    assert again.examined == 4
    _settle(pipeline, [*missed, "missed/seen.wav"])
    outputs = pipeline.outputs()
    assert "missed/mono one.wav/channel_0.json" in outputs
    assert "missed/stéréo #2.wav/channel_1.json" in outputs
    assert "missed/notes.txt.json" in pipeline.errors()


def test_new_blobs_are_left_to_their_trigger(pipeline: Pipeline, rt: Runtime) -> None:
    _clear_inputs(pipeline)
    pipeline.upload("grace/just-now.wav", mono_call(), [["too soon"]])
    report = run_sweep(rt, SweepLimits(grace=timedelta(minutes=10)))
    assert (report.examined, report.too_new, report.missing) == (1, 1, [])
    assert [r for r in pipeline.records() if r["BlobName"] == "grace/just-now.wav"] == []


def test_beyond_the_submit_budget_jobs_go_to_the_poller(pipeline: Pipeline, rt: Runtime) -> None:
    _clear_inputs(pipeline)
    names = [f"budget/{i}.wav" for i in range(4)]
    for name in names:
        pipeline.upload(name, mono_call(), [["budget"]])
    report = run_sweep(rt, SweepLimits(grace=timedelta(0), max_submitted=1))
    assert len(report.submitted) == 1
    assert sorted(report.handed_to_poller + report.submitted) == names
    handed = [pipeline.record_for(n) for n in report.handed_to_poller]
    assert {(r["State"], r["ErrorCode"]) for r in handed} == {("deferred", "MissedTrigger")}
    _settle(pipeline, names)
    assert {pipeline.record_for(n)["State"] for n in names} == {"done"}


def test_a_long_listing_continues_where_the_last_run_stopped(
    pipeline: Pipeline, rt: Runtime
) -> None:
    _clear_inputs(pipeline)
    names = [f"cursor/{i}.txt" for i in range(5)]  # rejected at once: cheap to process
    for name in names:
        pipeline.upload(name, b"x")
    small = SweepLimits(grace=timedelta(0), list_page=2, max_examined=2)
    runs: list[SweepReport] = []
    while not runs or not runs[-1].finished_listing:
        runs.append(run_sweep(rt, small))
        assert len(runs) <= 5
    assert [r.examined for r in runs] == [2, 2, 1]
    assert sorted(n for r in runs for n in r.missing) == names
    cursor = pipeline.table.get_entity(CURSOR_PARTITION, "cursor")
    assert cursor["Marker"] == ""  # the finished listing starts over next time
    pipeline.table.delete_entity(CURSOR_PARTITION, "cursor")


def _poison_queue(pipeline: Pipeline, name: str) -> QueueClient:
    queue = QueueClient.from_connection_string(pipeline.azurite.connection_string, name)
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    return queue


def _raw_messages(queue: QueueClient) -> list[str]:
    return [m.content for m in queue.peek_messages(max_messages=32)]


def _b64(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def test_poisoned_completion_is_redriven_then_reported(pipeline: Pipeline, rt: Runtime) -> None:
    _clear_inputs(pipeline)
    name = "poison/completion.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["poisoned"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    row = pipeline.record_for(name)
    key = row["RowKey"]
    pipeline.message_for(key)  # the host gave up on it ...
    poison = _poison_queue(pipeline, f"{pipeline.env['COMPLETION_QUEUE']}-poison")
    poison.send_message(_b64({"job_key": key}))  # ... and moved its raw body here

    first = run_sweep(rt, NOW)
    assert first.redrive.completions_redriven == [key]
    assert _raw_messages(poison) == []
    redriven = pipeline.message_for(key)
    assert json.loads(redriven.get_body()) == {"job_key": key, "redrives": 1}

    poison.send_message(_b64({"job_key": key, "redrives": 1}))  # failed again
    assert run_sweep(rt, NOW).redrive.completions_redriven == [key]
    pipeline.message_for(key)
    poison.send_message(_b64({"job_key": key, "redrives": 2}))  # POISON_REDRIVE_LIMIT=2
    last = run_sweep(rt, NOW)
    assert last.redrive.completions_given_up == [key]
    assert pipeline.receive() == []
    final = pipeline.record_for(name)
    assert final["State"] == "failed"
    report = pipeline.error_report(f"{name}.json")
    assert report["reasonCode"] == "CompletionFailed"
    assert "POISON_REDRIVE_LIMIT=2" in report["message"]
    assert pipeline.transcription_status(row["TranscriptionId"]) == 404  # no orphan left


def test_stale_poison_for_a_job_back_on_the_service_is_dropped_not_failed(
    pipeline: Pipeline, rt: Runtime
) -> None:
    """A completion that was poisoned before the job was resubmitted must not fail the new
    attempt, even when its re-drives are used up."""
    _clear_inputs(pipeline)
    name = "poison/resubmitted.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["resubmitted"]]))
    row = pipeline.record_for(name)
    assert row["State"] == "submitted"
    key = row["RowKey"]
    poison = _poison_queue(pipeline, f"{pipeline.env['COMPLETION_QUEUE']}-poison")
    poison.send_message(_b64({"job_key": key, "redrives": 2}))  # POISON_REDRIVE_LIMIT=2

    report = run_sweep(rt, NOW)

    assert report.redrive.completions_given_up == []
    assert report.redrive.completions_redriven == []
    assert report.redrive.dropped == 1
    assert _raw_messages(poison) == []
    assert pipeline.record_for(name)["State"] == "submitted"
    assert f"{name}.json" not in pipeline.errors()
    _settle(pipeline, [name])
    assert pipeline.record_for(name)["State"] == "done"


def test_poison_for_a_finished_or_unknown_job_is_dropped(pipeline: Pipeline, rt: Runtime) -> None:
    _clear_inputs(pipeline)
    poison = _poison_queue(pipeline, f"{pipeline.env['COMPLETION_QUEUE']}-poison")
    poison.send_message(_b64({"job_key": "tj-" + "0" * 40}))
    poison.send_message("not base64 and not json")
    report = run_sweep(rt, NOW)
    assert report.redrive.dropped == 1
    assert _raw_messages(poison) == []
    assert pipeline.receive() == []


def test_poisoned_batch_work_is_dropped_without_an_error(
    pipeline: Pipeline, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    _clear_inputs(pipeline)
    poison = _poison_queue(pipeline, f"{pipeline.env['COMPLETION_QUEUE']}-poison")
    poison.send_message(_b64({"batch_key": "tb-" + "0" * 40}))
    poison.send_message(_b64({"batch_run": "2026-01-01T00:00:00+00:00"}))
    with caplog.at_level("INFO", logger="shared.redrive"):
        report = run_sweep(rt, NOW)
    assert report.redrive.dropped == 2
    assert _raw_messages(poison) == []
    batch_lines = [r for r in caplog.records if "poisoned batch message" in r.getMessage()]
    assert len(batch_lines) == 2
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_blob_trigger_poison_is_submitted_by_the_sweep(pipeline: Pipeline, rt: Runtime) -> None:
    _clear_inputs(pipeline)
    name = "poison/trigger gave up.wav"
    blob = pipeline.upload(name, mono_call(), [["second chance"]])
    etag = blob.get_blob_properties().etag
    poison = _poison_queue(pipeline, BLOB_TRIGGER_POISON_QUEUE)
    ours = {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.submit",
        "BlobType": "BlockBlob",
        "ContainerName": pipeline.env["INPUT_CONTAINER"],
        "BlobName": name,
        "ETag": etag,
    }
    other = {**ours, "ContainerName": "someone-elses-container"}
    poison.send_message(_b64(other))
    poison.send_message(_b64(ours))
    # the blob trigger already gave up, so the missed-blob pass must not be what finds it
    report = run_sweep(rt, SweepLimits(grace=timedelta(hours=1), poison_visibility_s=1))
    assert report.redrive.blobs_redriven == [name]
    assert pipeline.record_for(name)["State"] == "submitted"
    wait_for(lambda: _raw_messages(poison), timeout=10, what="the other app's message to reappear")
    assert [json.loads(base64.b64decode(m)) for m in _raw_messages(poison)] == [other]
    poison.clear_messages()
    _settle(pipeline, [name])
    assert pipeline.record_for(name)["State"] == "done"


def test_blob_trigger_poison_that_keeps_failing_is_reported(
    pipeline: Pipeline, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_inputs(pipeline)
    name = "poison/never works.wav"
    blob = pipeline.upload(name, mono_call(), [["never"]])
    poison = _poison_queue(pipeline, BLOB_TRIGGER_POISON_QUEUE)
    poison.send_message(
        _b64(
            {
                "Type": "BlobTrigger",
                "FunctionId": "Host.Functions.submit",
                "ContainerName": pipeline.env["INPUT_CONTAINER"],
                "BlobName": name,
                "ETag": blob.get_blob_properties().etag,
            }
        )
    )

    def broken(*_args: Any, **_kwargs: Any) -> str:
        raise RuntimeError("a bug in the submit path")

    monkeypatch.setattr(rt.content_urls, "url_for", broken)
    limits = SweepLimits(grace=timedelta(hours=1), poison_visibility_s=1)
    first = run_sweep(rt, limits)
    assert first.redrive.blobs_redriven == []
    assert first.redrive.errors == 1
    counted = wait_for(lambda: _raw_messages(poison), timeout=10, what="the message to reappear")
    assert json.loads(base64.b64decode(counted[0]))["AppRedrives"] == 1
    second = run_sweep(rt, limits)  # POISON_REDRIVE_LIMIT=2: this was the last round
    assert second.redrive.blobs_given_up == [name]
    assert pipeline.record_for(name)["State"] == "failed"
    report = pipeline.error_report(f"{name}.json")
    assert report["reasonCode"] == "SubmitFailed"
    assert "a bug in the submit path" in report["message"]
    assert _raw_messages(poison) == []
