"""`python -m devhost.stack`: upload, and the demo end to end (scripted Speech engine)."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile
from azure.storage.blob import BlobServiceClient

from devhost.services import PROJECT_ROOT, wait_for
from tests.devhost.conftest import Output, unique

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
    result = run_stack("--run-dir", str(tmp_path / "run"), "demo", "--samples", str(tmp_path))
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
    env["POLL_SCHEDULE"] = "* * * * * *"  # exported: wins over the stack's 5 s default
    result = run_stack(
        "--run-dir",
        str(run_dir),
        "demo",
        "--engine",
        "scripted",
        "--samples",
        str(samples),
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
    # It ends with where to look next: the status page of `make run`.
    assert out.rstrip().splitlines()[-1].endswith("http://localhost:7071/api/status")
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(run_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


FAKE_FUNC = """#!/bin/sh
# Stands in for Core Tools: records how it was started, then runs the app with devhost.
echo "$@" > "$FAKE_FUNC_LOG"
command -v python >> "$FAKE_FUNC_LOG"
exec python -m devhost --port "$3"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_run_with_runner_func_upload_and_ctrl_c_stops_everything(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    func = bin_dir / "func"
    func.write_text(FAKE_FUNC)
    func.chmod(0o755)
    run_dir = tmp_path / "run"
    port = free_port()
    tag = unique("run")
    env = {
        **os.environ,
        "RUNNER": "func",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_FUNC_LOG": str(tmp_path / "func.log"),
        "INPUT_CONTAINER": f"{tag}-in",
        "OUTPUT_CONTAINER": f"{tag}-out",
        "ERROR_CONTAINER": f"{tag}-err",
        "PYTHONUNBUFFERED": "1",
        "POLL_SCHEDULE": "* * * * * *",
    }
    argv = [
        sys.executable,
        "-m",
        "devhost.stack",
        "--run-dir",
        str(run_dir),
        "run",
        "--engine",
        "scripted",
        "--free-ports",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = Output(process)
    try:
        wait_for(
            lambda: output.find("Press Ctrl\\+C to stop everything"),
            timeout=60,
            what=f"the stack to start:\n{output.text()}",
        )
        assert output.find("Starting the app with func start")
        assert output.find("make upload FILE=")
        conn = output.find(r"^CONN \(Azurite's public development account\): (\S+)")
        assert conn is not None
        recording = tmp_path / "call.wav"
        tone_wav(recording, 2)
        upload = run_stack("--run-dir", str(run_dir), "upload", str(recording), env=env)
        assert upload.returncode == 0, upload.stdout + upload.stderr + output.text()
        outputs = BlobServiceClient.from_connection_string(conn.group(1)).get_container_client(
            f"{tag}-out"
        )
        wait_for(
            lambda: outputs.get_blob_client("call.wav/transcript.txt").exists(),
            timeout=60,
            interval=0.5,
            what="the transcript",
        )
        recorded = (tmp_path / "func.log").read_text().splitlines()
        assert recorded[0] == f"start --port {port}"
        assert recorded[1] == str(Path(sys.executable).parent / "python")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert output.find("everything started here has been shut down")
    assert not (run_dir / "stack.json").exists()
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(run_dir) in " ".join(p.info["cmdline"] or [])
        or f"--port {port}" in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_upload_without_reachable_storage_fails_fast_and_clearly(tmp_path):
    recording = tmp_path / "call.wav"
    tone_wav(recording, 1)
    port = free_port()  # nothing listens there
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    env = {**os.environ, "AzureWebJobsStorage": conn}
    result = run_stack("--root", str(tmp_path), "upload", str(recording), env=env, timeout=60)
    assert result.returncode == 2
    assert "is `make run` running?" in result.stdout
