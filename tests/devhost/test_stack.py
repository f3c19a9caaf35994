"""`python -m devhost.stack`: upload, and the demo end to end (scripted Speech engine)."""

import os
import subprocess
import sys

import numpy as np
import psutil
import pytest
import soundfile
from azure.storage.blob import BlobServiceClient

from devhost.services import PROJECT_ROOT
from tests.devhost.conftest import unique

pytestmark = pytest.mark.integration


def tone_wav(path, channels: int) -> None:
    rate = 16000
    t = np.arange(rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    soundfile.write(path, data, rate, subtype="PCM_16")


def run_stack(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run(
        [sys.executable, "-m", "devhost.stack", *args],
        cwd=PROJECT_ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_upload_puts_the_file_in_the_input_container(azurite, tmp_path):
    container = unique("up")
    env = {
        **os.environ,
        "AzureWebJobsStorage": azurite.connection_string,
        "INPUT_CONTAINER": container,
    }
    recording = tmp_path / "call one.wav"
    tone_wav(recording, 1)
    result = run_stack("--root", str(tmp_path), "upload", str(recording), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"to {container}/call one.wav" in result.stdout
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    blob = service.get_blob_client(container, "call one.wav")
    assert blob.download_blob().readall() == recording.read_bytes()
    assert blob.get_blob_properties().content_settings.content_type == "audio/x-wav"


def test_upload_of_a_missing_file_is_a_clear_error(tmp_path):
    result = run_stack("--root", str(tmp_path), "upload", str(tmp_path / "nope.wav"))
    assert result.returncode == 2
    assert "is not a file" in result.stdout


def test_demo_without_samples_says_how_to_make_them(tmp_path):
    result = run_stack("demo", "--samples", str(tmp_path), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "make samples" in result.stdout


@pytest.mark.slow
def test_demo_transcribes_every_sample_and_stops_everything(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    tone_wav(samples / "mono.wav", 1)
    tone_wav(samples / "stereo.wav", 2)
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "RUNNER"}
    result = run_stack(
        "demo",
        "--engine",
        "scripted",
        "--samples",
        str(samples),
        "--run-dir",
        str(run_dir),
        "--timeout",
        "90",
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Starting the app with devhost" in out
    assert "=== mono.wav: done" in out
    assert "=== stereo.wav: done" in out
    assert "transcripts/stereo.wav/transcript.txt" in out
    assert "transcripts/stereo.wav/channel_1.json" in out
    assert "Agent:" in out
    assert "Customer:" in out
    assert "All 2 recordings transcribed." in out
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(run_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
