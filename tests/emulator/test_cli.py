"""The command line: start-up line, option errors, engine selection."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import httpx
import pytest

from devhost.services import PROJECT_ROOT
from speech_emulator.app import create_app
from speech_emulator.cli import settings_from_args
from speech_emulator.config import Settings
from speech_emulator.engines.registry import EngineUnavailableError, create_engine
from speech_emulator.speech_models import custom_model_id


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speech_emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        check=False,
    )


NO_KEY = ("--storage-connection-string", "AccountName=x")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limit", "fast"], "N/SECONDS"),
        (["--error-rate", "2"], "between 0 and 1"),
        (["--custom-model", "NoFile"], "NAME=phrases.txt"),
        (["--custom-model", "X=/nonexistent/phrases.txt"], "cannot read"),
        (["--engine", "whisper"], "invalid choice"),
        (["--workers", "0"], "--workers"),
        (["--concurrent-files", "0"], "--concurrent-files must be at least 1"),
        (["--file-fail-share", "1.5"], "between 0 and 1"),
        (["--storage-access", "key"], "invalid choice"),
        (["--storage-access", "identity"], "needs --storage-connection-string"),
        (
            [*("--engine", "scripted", "--storage-access", "identity"), *NO_KEY],
            "has no AccountKey",
        ),
        (["--engine", "scripted", "--byos", "nonsense"], "connection string is not usable"),
    ],
)
def test_bad_options_exit_with_a_message(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_port_in_use_is_reported() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run("--engine", "scripted", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_settings_from_args(tmp_path) -> None:
    phrases = tmp_path / "p.txt"
    phrases.write_text("hello\n", encoding="utf-8")
    settings = settings_from_args(
        [
            "--engine",
            "scripted",
            "--instant",
            "--custom-model",
            f"A={phrases}",
            "--rate-limit",
            "100/10",
            "--fail-share",
            "0.5",
            "--fail-code",
            "InvalidData",
            "--concurrent-files",
            "7",
            "--file-fail-share",
            "0.25",
            "--file-fail-code",
            "UnexpectedError",
            "--storage-access",
            "identity",
            "--storage-connection-string",
            "UseDevelopmentStorage=true",
            "--byos",
            "UseDevelopmentStorage=true",
        ]
    )
    assert settings.behaviour.start_delay == 0
    assert settings.behaviour.processing_time == 0
    assert settings.custom_models[0].id == custom_model_id("A")
    assert str(settings.behaviour.rate_limit) == "100/10"
    assert settings.behaviour.fail_code == "InvalidData"
    assert settings.behaviour.concurrent_files == 7
    assert settings.behaviour.file_fail_share == 0.25
    assert settings.behaviour.file_fail_code == "UnexpectedError"
    assert settings.storage_access == "identity"
    assert settings.storage_connection_string == "UseDevelopmentStorage=true"
    assert settings.byos_connection_string == "UseDevelopmentStorage=true"


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(EngineUnavailableError, match="unknown engine"):
        create_engine("whisper", {})


@pytest.mark.integration
def test_listen_line_and_custom_model_lines(speech_emulator_factory, tmp_path) -> None:
    phrases = tmp_path / "p.txt"
    phrases.write_text("hello there\n", encoding="utf-8")
    emulator = speech_emulator_factory("--engine", "scripted", "--custom-model", f"Calls={phrases}")
    assert emulator.url.startswith("http://127.0.0.1:")
    assert emulator.custom_model_url("Calls") == (
        f"{emulator.url}/speechtotext/models/{custom_model_id('Calls')}?api-version=2024-11-15"
    )


def test_create_app_in_process() -> None:
    app = create_app(Settings(engine="scripted", public_url="http://speech.local"))

    async def calls() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            listed = await http.get(
                "/speechtotext/models/base",
                params={"api-version": "2025-10-15"},
                headers={"Ocp-Apim-Subscription-Key": "local-dev-key"},
            )
            return listed, await http.get("/_emulator/config")

    listed, config = asyncio.run(calls())
    assert listed.status_code == 200
    assert listed.json()["values"][0]["self"].startswith("http://speech.local/speechtotext/")
    assert config.json()["start_delay"] == 1.0


@pytest.mark.integration
def test_public_url_is_used_in_links(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--public-url", "https://speech.example.test/"
    )
    response = httpx.get(
        f"{emulator.url}/speechtotext/models/base",
        params={"api-version": "2024-11-15"},
        headers={"Ocp-Apim-Subscription-Key": emulator.key},
    )
    assert response.json()["values"][0]["self"].startswith(
        "https://speech.example.test/speechtotext/models/base/"
    )


@pytest.mark.integration
def test_small_answers_are_not_held_back(speech_emulator_factory) -> None:
    # With Nagle's algorithm on the listening socket's connections, every small answer
    # waited ~40 ms for the client's delayed ACK: 44 ms per Speech call, whatever the load.
    emulator = speech_emulator_factory("--engine", "scripted")
    with httpx.Client(headers={"Ocp-Apim-Subscription-Key": emulator.key}) as http:
        url = f"{emulator.url}/speechtotext/transcriptions?api-version=2024-11-15"
        http.get(url)  # connect
        took = []
        for _ in range(21):
            started = time.perf_counter()
            assert http.get(url).status_code == 200
            took.append(time.perf_counter() - started)
    assert sorted(took)[10] < 0.025
