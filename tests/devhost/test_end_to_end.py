"""The real app under `python -m devhost`, as subprocesses, against Azurite and the emulator.

Drops recordings into the input container, kills devhost (SIGKILL) in the middle of the
batch, restarts it, and checks every recording ends with exactly one set of outputs, no
error reports, and no transcription left on the Speech service.
"""

import io
import json
import os
import uuid

import httpx
import numpy as np
import pytest
import soundfile
from azure.storage.blob import BlobServiceClient

from devhost.services import wait_for
from tests.integration.devhost_process import HostProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDINGS = 6
EXPECTED_OUTPUTS = {"transcript.txt", "transcript.json", "channel_0.json", "channel_1.json"}


def stereo_wav(seconds: float = 1.5) -> bytes:
    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    left = (0.3 * np.sin(2 * np.pi * 440 * t) * (t < seconds / 2)).astype(np.float32)
    right = (0.3 * np.sin(2 * np.pi * 660 * t) * (t >= seconds / 2)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([left, right], axis=1), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_devhost_survives_a_kill_mid_batch_with_exactly_one_set_of_outputs(
    azurite, speech_emulator_factory, tmp_path
):
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--start-delay", "0.5", "--processing-time", "2"
    )
    tag = uuid.uuid4().hex[:8]
    names = {
        "INPUT_CONTAINER": f"e2e-in-{tag}",
        "OUTPUT_CONTAINER": f"e2e-out-{tag}",
        "ERROR_CONTAINER": f"e2e-err-{tag}",
        "JOBS_TABLE": f"e2ejobs{tag}",
        "COMPLETION_QUEUE": f"e2e-done-{tag}",
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPEECH_", "POLL_"))},
        **names,
        "AzureWebJobsStorage": azurite.connection_string,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_KEY": emulator.key,
        "POLL_SCHEDULE": "* * * * * *",
        "POLL_MIN_INTERVAL_SECONDS": "0",
        # A job the killed host left in `received` is resumed by the poll after this lease.
        "JOB_LEASE_SECONDS": "5",
        "AzureFunctionsWebHost__hostid": f"e2e-{tag}",
        "PYTHONUNBUFFERED": "1",
    }
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    inputs = service.get_container_client(names["INPUT_CONTAINER"])
    inputs.create_container()
    outputs = service.get_container_client(names["OUTPUT_CONTAINER"])

    first = HostProcess(env, settings, tmp_path / "devhost-1.log")
    try:
        wait_for(lambda: first.count("Host started"), timeout=60, what="devhost to start")
        audio = stereo_wav()
        for i in range(RECORDINGS):
            inputs.upload_blob(f"call-{i}.wav", audio)
        # Kill it in the middle: some recordings submitted, none finished yet.
        wait_for(
            lambda: first.count("Executed 'Functions.submit' (Succeeded") >= 2,
            timeout=30,
            what="the first submissions",
        )
        first.managed.kill()
    finally:
        first.managed.stop()
    finished_before_kill = first.count("Executed 'Functions.complete' (Succeeded")

    second = HostProcess(env, settings, tmp_path / "devhost-2.log")
    try:

        def all_transcribed() -> bool:
            done = [b.name for b in outputs.list_blobs() if b.name.endswith("/transcript.txt")]
            return len(done) == RECORDINGS

        wait_for(all_transcribed, timeout=90, interval=0.5, what="every recording's outputs")

        def service_is_clean() -> bool:
            response = httpx.get(
                f"{emulator.endpoint}/speechtotext/transcriptions",
                params={"api-version": "2024-11-15"},
                headers={"Ocp-Apim-Subscription-Key": emulator.key},
            )
            response.raise_for_status()
            return response.json()["values"] == []

        wait_for(service_is_clean, timeout=30, interval=0.5, what="no server-side jobs left")
    finally:
        second.managed.stop()

    by_recording: dict[str, list[str]] = {}
    for blob in outputs.list_blobs():
        recording, _, product = blob.name.partition("/")
        by_recording.setdefault(recording, []).append(product)
    assert sorted(by_recording) == [f"call-{i}.wav" for i in range(RECORDINGS)]
    for recording, products in by_recording.items():
        assert len(products) == len(set(products)), recording
        assert set(products) >= EXPECTED_OUTPUTS, (recording, products)
    errors = service.get_container_client(names["ERROR_CONTAINER"])
    assert [b.name for b in errors.list_blobs()] == []
    assert finished_before_kill < RECORDINGS  # the kill really happened mid-batch
