"""SIGKILL the local Functions host at random points across a batch, restart it, repeat.

Azurite, the Speech emulator (jobs take ~1.5 s) and `python -m devhost` (the app plus its
sweep timer) run as subprocesses. devhost is killed with
SIGKILL (its whole process group) 6 times at seeded random moments while recordings arrive,
restarted each time, then left to finish. Every kill must land while work is in flight
(jobs started and not ended, as the dead host left them). Afterwards every recording has
exactly one set of outputs and one `done` job, the service holds no transcription, and no
recording ever had more service-side jobs than its recorded submission attempts (no
duplicate POST).
"""

from __future__ import annotations

import functools
import json
import random
import time
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite, SpeechEmulator, wait_for
from tests.conftest import EmulatorFactory
from tests.integration.devhost_process import (
    HostProcess,
    assert_each_input_once,
    host_env,
    jobs_in_flight,
    wait_until_settled,
)
from tests.integration.harness import mono_call, stereo_call

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261121
KILLS = 6
RECORDINGS = 16


@pytest.fixture
def emulator(speech_emulator_factory: EmulatorFactory) -> SpeechEmulator:
    return speech_emulator_factory(
        "--engine", "scripted", "--start-delay", "0.3", "--processing-time", "1.5"
    )


@pytest.fixture
def env(azurite: Azurite, emulator: SpeechEmulator) -> dict[str, str]:
    return host_env(azurite.connection_string, emulator, "kill")


def test_random_sigkills_converge_to_exactly_one_outcome(
    azurite: Azurite, emulator: SpeechEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    inputs = service.get_container_client(env["INPUT_CONTAINER"])
    inputs.create_container()
    names = [f"calls/{i:02} call.wav" for i in range(RECORDINGS)]
    waves = [names[i :: KILLS + 1] for i in range(KILLS + 1)]  # some arrive while it is down
    kills: list[str] = []
    started = time.monotonic()

    for run in range(KILLS):
        host = HostProcess(env, settings, tmp_path / f"devhost-{run}.log")
        try:
            wait_for(
                functools.partial(host.count, "Host started"), timeout=60, what="devhost to start"
            )
            for name in waves[run]:
                audio = stereo_call() if rng.random() < 0.5 else mono_call()
                inputs.upload_blob(name, audio, metadata={"transcript": '[["hello"],["hi"]]'})
            time.sleep(rng.uniform(0.5, 3.5))  # the random kill point itself
            executed = host.count("Executed 'Functions.")
            host.managed.kill()
            # The host is dead: the table is as it left it, the log as far as it got.
            in_flight = jobs_in_flight(azurite.connection_string, env)
            kills.append(
                f"run {run}: killed after {executed} executions, with jobs of {in_flight} in "
                f"flight and {host.unfinished()} executing"
            )
            assert in_flight, f"kill {run} hit no work in flight: {kills}"
        finally:
            host.managed.stop()
        for name in waves[KILLS] if run == KILLS // 2 else []:
            inputs.upload_blob(name, mono_call(), metadata={"transcript": '[["down"]]'})

    final = HostProcess(env, settings, tmp_path / "devhost-final.log")
    try:
        wait_until_settled(azurite.connection_string, env, emulator, names, note=str(kills))
    finally:
        final.managed.stop()
    assert_each_input_once(azurite.connection_string, env, emulator, names, note=str(kills))
    assert time.monotonic() - started < 150
    print("\n".join(kills))  # what each kill hit (pytest -rP shows it)
