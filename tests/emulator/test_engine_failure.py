"""An engine that raises fails only that input, and the emulator keeps serving.

The app is built in-process with `create_app(settings, engine=...)` (the seam for custom
engines) and served by uvicorn on a free port, so the job still runs over real HTTP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from devhost.services import Azurite, wait_for
from speech_emulator.app import create_app
from speech_emulator.config import Behaviour, Settings
from speech_emulator.engines.base import Phrase, RecognitionRequest
from speech_emulator.engines.scripted import ScriptedEngine
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.result_schema import TranscriptionReport
from tests.emulator.speech import client, create_body, download, files, submit, upload, wait_done

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class InProcess:
    """An emulator app served by uvicorn in this process."""

    url: str
    key: str


class FailsOnLongAudio:
    """Scripted recognition, but raises on inputs longer than two seconds."""

    name = "flaky"

    def recognize(self, request: RecognitionRequest) -> list[Phrase]:
        if len(request.samples) > 2 * request.sample_rate:
            raise RuntimeError("decoder exploded")
        return ScriptedEngine().recognize(request)


@pytest.fixture
def flaky_emulator() -> Iterator[InProcess]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        port=port,
        engine="scripted",
        behaviour=Behaviour(start_delay=0, processing_factor=0, processing_time=0),
    )
    app = create_app(settings, engine=FailsOnLongAudio())
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="in-process emulator")
    try:
        yield InProcess(url=f"http://127.0.0.1:{port}", key=settings.key)
    finally:
        server.should_exit = True
        thread.join(10)


def test_engine_error_fails_that_input_only(flaky_emulator: InProcess, azurite: Azurite) -> None:
    short = upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]))
    long = upload(azurite, encode([bursts([(0.1, 0.5)], 3.0)]))
    with client(flaky_emulator) as api:
        entity = wait_done(api, submit(api, create_body([short, long])))
        assert entity["status"] == "Succeeded"
        (report_file,) = [f for f in files(api, entity) if f["kind"] == "TranscriptionReport"]
        report = TranscriptionReport.model_validate(download(report_file))
        assert [d.status for d in report.details] == ["Succeeded", "Failed"]
        assert report.details[1].error_kind == "UnexpectedError"
        assert "decoder exploded" in (report.details[1].error_message or "")
        only_long = wait_done(api, submit(api, create_body([long])))
        assert only_long["status"] == "Failed"
        assert only_long["properties"]["error"]["code"] == "UnexpectedError"
