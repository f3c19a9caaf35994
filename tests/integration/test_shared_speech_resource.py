"""A Speech resource shared with another workload: the poller lists only this app's jobs.

Every transcription the app submits carries the deployment's tag as its ``description``
and the poller's listing filters on it, so 100 foreign jobs created before ours (the
emulator lists oldest first, 100 per page) cost nothing: one list request finds ours. A
job submitted by an earlier version (no description) is still found by its id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devhost.services import SpeechEmulator, start_speech_emulator, wait_for
from shared import jobs
from tests.integration.harness import Pipeline, delta, mono_call, requests_by_route

pytestmark = pytest.mark.integration

PIPELINE_EMULATOR = "shared_emulator"
PIPELINE_ENV = {"POLL_LIST_THRESHOLD": "0"}  # always poll by listing
LIST_ROUTE = "GET /speechtotext/transcriptions"
GET_ROUTE = "GET /speechtotext/transcriptions/{id}"
FOREIGN_JOBS = 100  # one full page


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    """An emulator of this module's own, already holding another workload's jobs."""
    log = Path(tmp_path_factory.mktemp("shared-emulator")) / "emulator.log"
    service = start_speech_emulator("--engine", "scripted", "--instant", log_path=log)
    try:
        with httpx.Client(
            base_url=f"{service.endpoint}/speechtotext",
            headers={"Ocp-Apim-Subscription-Key": service.key},
            params={"api-version": "2024-11-15"},
            timeout=30.0,
        ) as api:
            for i in range(FOREIGN_JOBS):
                body = {
                    "displayName": f"other workload {i}",
                    "description": "someone else's batch",
                    "locale": "en-US",
                    # Refused at once: the other workload's jobs must not hold the
                    # emulator's file slots (shared FIFO) while ours wait behind them.
                    "contentUrls": ["http://127.0.0.1:9/other.wav"],
                    "properties": {"timeToLiveHours": 48},
                }
                api.post("/transcriptions:submit", json=body).raise_for_status()
        yield service
    finally:
        service.stop()


def _wait_finished(pipeline: Pipeline, transcription_ids: list[str]) -> None:
    """The service has finished these jobs, so one poll must see them finished."""

    def finished() -> bool:
        return all(
            pipeline.api.get(f"/transcriptions/{tid}").json()["status"] in ("Succeeded", "Failed")
            for tid in transcription_ids
        )

    wait_for(finished, timeout=30, interval=0.05, what="the emulator to finish our jobs")


def _state(pipeline: Pipeline, name: str) -> str:
    return str(pipeline.record_for(name)["State"])


def test_jobs_carry_the_deployment_tag_and_one_listing_finds_them(pipeline: Pipeline) -> None:
    names = [f"shared/call-{i}.wav" for i in range(3)]
    for name in names:
        pipeline.submit(pipeline.upload(name, mono_call(), [["hello"]]))
    tag = jobs.deployment_tag("devstoreaccount1", pipeline.env["INPUT_CONTAINER"])
    for name in names:
        entity = pipeline.api.get(
            f"/transcriptions/{pipeline.record_for(name)['TranscriptionId']}"
        ).json()
        assert entity["description"] == tag

    _wait_finished(pipeline, [pipeline.record_for(n)["TranscriptionId"] for n in names])
    before = requests_by_route(pipeline.stats())
    pipeline.poll()
    made = delta(before, requests_by_route(pipeline.stats()))
    assert {_state(pipeline, name) for name in names} == {"completing"}
    # Unfiltered, the foreign page comes first and a second request is needed.
    assert made.get(LIST_ROUTE) == 1, made
    assert GET_ROUTE not in made, made
    pipeline.drain()


def test_a_job_submitted_before_tagging_is_still_found_by_its_id(pipeline: Pipeline) -> None:
    name = "shared/untagged.wav"
    pipeline.submit(pipeline.upload(name, mono_call(), [["hello"]]))
    transcription_id = pipeline.record_for(name)["TranscriptionId"]
    # What the previous version submitted: no description.
    pipeline.api.patch(f"/transcriptions/{transcription_id}", json={"description": ""})
    _wait_finished(pipeline, [transcription_id])

    before = requests_by_route(pipeline.stats())
    pipeline.poll()
    made = delta(before, requests_by_route(pipeline.stats()))
    assert _state(pipeline, name) == "completing"
    assert made.get(GET_ROUTE) == 1, made  # the fallback for what the listing did not show
    pipeline.drain()
    assert _state(pipeline, name) == "done"
