"""Azurite stopped in the middle of a batch, then restarted on the same ports and data.

The app runs under `python -m devhost` (with its sweep) against an Azurite of its own. While
storage is down every trigger, timer and completion fails or stalls, and the Speech service
cannot fetch recordings; once it is back, every recording ends with exactly one set of
outputs and one done job, and the Speech service holds nothing (and never got a duplicate
job).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite, SpeechEmulator, start_azurite, wait_for
from tests.conftest import EmulatorFactory
from tests.integration.devhost_process import (
    HostProcess,
    assert_each_input_once,
    host_env,
    wait_until_settled,
)
from tests.integration.harness import mono_call, stereo_call

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 4.0
RECORDINGS = 12


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
        "--engine", "scripted", "--start-delay", "0.3", "--processing-time", "1"
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
        own_azurite.stop()
        down_at = host.count("Executed 'Functions.")
        time.sleep(OUTAGE_S)  # the outage itself: the host keeps running against nothing
        failed_while_down = host.count("(Failed")
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
    # The outage really hit running work: executions were under way or failed meanwhile.
    assert down_at > 0
    assert host.count("(Failed") >= failed_while_down
