"""Azurite stopped in the middle of a batch, then restarted on the same ports and data.

The app runs under `python -m devhost` (with its sweep) against an Azurite of its own. While
storage is down every trigger, timer and completion fails or stalls, and the Speech service
cannot fetch recordings. Storage stays down until the outage has hit running work on both
sides: a transcription submitted before it failed (the service could not fetch its
recording) and a function execution failed. Once storage is back, every recording ends with
exactly one set of outputs and one done job (the ones the service could not fetch were
submitted again), and the Speech service holds nothing (and never got a duplicate job).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite, SpeechEmulator, start_azurite, wait_for
from tests.conftest import EmulatorFactory
from tests.integration.devhost_process import (
    HostProcess,
    assert_each_input_once,
    host_env,
    job_timelines_by_id,
    wait_until_settled,
)
from tests.integration.harness import mono_call, stereo_call

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDINGS = 12
# Jobs wait this long before the service fetches their recording: long enough that the
# first submissions are still waiting when storage goes down, so their fetch fails.
START_DELAY_S = "1.5"


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite this test may stop; its data directory survives the restart."""
    service = start_azurite(tmp_path / "azurite-data", log_path=tmp_path / "azurite.log")
    try:
        yield service
    finally:
        service.close()


def test_storage_outage_mid_batch(
    own_azurite: Azurite, speech_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emulator: SpeechEmulator = speech_emulator_factory(
        "--engine", "scripted", "--start-delay", START_DELAY_S, "--processing-time", "1"
    )
    env = host_env(own_azurite.connection_string, emulator, "out")
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
    inputs = BlobServiceClient.from_connection_string(
        own_azurite.connection_string
    ).get_container_client(env["INPUT_CONTAINER"])
    inputs.create_container()
    names = [f"outage/{i:02}.wav" for i in range(RECORDINGS)]
    ports = (own_azurite.blob_port, own_azurite.queue_port, own_azurite.table_port)

    host = HostProcess(env, settings, tmp_path / "devhost.log")
    try:
        wait_for(functools.partial(host.count, "Host started"), timeout=60, what="devhost")
        for i, name in enumerate(names[: RECORDINGS // 2]):
            audio = stereo_call() if i % 2 else mono_call()
            inputs.upload_blob(name, audio, metadata={"transcript": '[["before"],["outage"]]'})
        wait_for(
            lambda: host.count("Executed 'Functions.submit' (Succeeded") >= 2,
            timeout=30,
            what="the first submissions",
        )
        down_at = datetime.now(UTC)
        own_azurite.stop()
        down_line = len(host.lines)

        def hit_running_work() -> bool:
            failed_runs = [
                line
                for line in host.lines[down_line:]
                if "Executed 'Functions." in line and "(Failed," in line
            ]
            return bool(failed_runs) and bool(fetch_failed(emulator, down_at))

        # The outage itself: the host runs against nothing until that has hit running work.
        wait_for(hit_running_work, timeout=30, what="the outage to hit running work")
        own_azurite.start()
        assert (own_azurite.blob_port, own_azurite.queue_port, own_azurite.table_port) == ports
        for name in names[RECORDINGS // 2 :]:
            inputs.upload_blob(name, mono_call(), metadata={"transcript": '[["after"]]'})
        wait_until_settled(
            own_azurite.connection_string, env, emulator, names, note="after the outage"
        )
    finally:
        host.managed.stop()
    assert host.managed.process.returncode is not None
    # Every recording transcribed: one the service could not fetch while storage was down
    # is submitted again with a fresh SAS, not reported.
    failed = assert_each_input_once(
        own_azurite.connection_string, env, emulator, names, stalled_runs=True
    )
    assert failed == []
    table = TableClient.from_connection_string(own_azurite.connection_string, env["JOBS_TABLE"])
    hit = fetch_failed(emulator, down_at)
    assert hit  # (waited for above) jobs submitted before the outage that it made fail ...
    for key, failed_id in hit:
        row = table.get_entity("job", key)
        # ... resubmitted: done on another transcription. (Usually its second attempt; when
        # the outage also cut the run that posted the failed one off before it recorded it,
        # the poller found it by displayName, deleted it and submitted the first recorded
        # attempt.)
        assert (row["State"], row["TranscriptionId"] != failed_id) == ("done", True), row


def fetch_failed(emulator: SpeechEmulator, before: datetime) -> list[tuple[str, str]]:
    """(job key, transcription id) of transcriptions created before `before` that the
    service failed.

    Nothing else fails jobs here (no faults injected): these could not fetch the recording.
    """
    return sorted(
        (job["displayName"], transcription_id)
        for transcription_id, job in job_timelines_by_id(emulator).items()
        if job["status"] == "Failed" and datetime.fromisoformat(job["created"]) < before
    )
