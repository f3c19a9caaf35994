"""A DELETE refused after the outputs are written: the job waits to delete, nothing is rewritten."""

from __future__ import annotations

import pytest

from tests.integration.harness import Pipeline, mono_call

pytestmark = pytest.mark.integration


def test_throttled_delete_is_retried_later_without_rewriting_outputs(pipeline: Pipeline) -> None:
    name = "pending/delete.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["delete me later"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    (message,) = pipeline.receive()
    transcription_id = pipeline.record_for(name)["TranscriptionId"]

    # Only the list-files call fits in the window: the DELETE after the outputs gets a 429.
    pipeline.configure(rate_limit="1/600")
    try:
        pipeline.complete(message)  # must not raise: the outputs are safe
        row = pipeline.record_for(name)
        assert row["State"] == "completing"
        assert row["OutputsWritten"] is True
        assert pipeline.transcription_status(transcription_id) == 429  # still limited
    finally:
        pipeline.configure(rate_limit=None)
    assert pipeline.transcription_status(transcription_id) == 200  # still on the service
    output = f"{name}/channel_0.json"
    written = pipeline.blob_service.get_blob_client(
        pipeline.env["OUTPUT_CONTAINER"], output
    ).get_blob_properties()

    # Due now (instead of after the jittered retry delay): the poller re-enqueues it.
    pipeline.table.update_entity(
        {"PartitionKey": "job", "RowKey": row["RowKey"], "NextCheckAt": row["Created"]}
    )
    before = pipeline.stats()["requests"]
    pipeline.poll()
    assert len(pipeline.drain()) == 1
    assert pipeline.record_for(name)["State"] == "done"
    assert pipeline.transcription_status(transcription_id) == 404  # nothing left behind
    after = pipeline.stats()["requests"]
    files_route = next(r for r in after if r.endswith("/files"))
    assert after[files_route] == before[files_route]  # no second list-files ...
    again = pipeline.blob_service.get_blob_client(
        pipeline.env["OUTPUT_CONTAINER"], output
    ).get_blob_properties()
    assert again.etag == written.etag  # ... and no output written twice


def test_throttled_completion_goes_back_to_the_poller_not_to_poison(pipeline: Pipeline) -> None:
    name = "pending/list-files.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["collect me later"]]))
    pipeline.poll_until(lambda: pipeline.record_for(name)["State"] == "completing")
    (message,) = pipeline.receive()
    before = pipeline.record_for(name)

    # The window fills up before the completion runs: its list-files call gets a 429.
    pipeline.configure(rate_limit="1/600")
    try:
        assert pipeline.transcription_status(before["TranscriptionId"]) == 200
        pipeline.complete(message)  # must not raise: a raise burns one of five dequeues
        row = pipeline.record_for(name)
        assert row["State"] == "completing"
        assert not row.get("OutputsWritten")
        assert row["NextCheckAt"] > before["NextCheckAt"]  # waits for Retry-After
        assert f"{name}/channel_0.json" not in pipeline.outputs()
    finally:
        pipeline.configure(rate_limit=None)

    pipeline.table.update_entity(
        {"PartitionKey": "job", "RowKey": row["RowKey"], "NextCheckAt": row["Created"]}
    )
    pipeline.poll()  # due: re-enqueued
    assert len(pipeline.drain()) == 1
    assert pipeline.record_for(name)["State"] == "done"
    assert f"{name}/channel_0.json" in pipeline.outputs()
