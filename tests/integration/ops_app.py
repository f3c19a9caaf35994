"""The operator view's test app: `python -m devhost` running function_app against Azurite and
the Speech emulator, with a mixed batch already run through it.

The batch: recordings the service fails (a permanent `InvalidAudioFormat`, injected by the
emulator's fail-share fault while they are submitted; one of them named with markup), then good
recordings and bad inputs (empty, not audio) with the fault off. `ops_app` gives a test module
its own app and batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient

from devhost.services import (
    DEV_ACCOUNT_KEY,
    Azurite,
    SpeechEmulator,
    start_speech_emulator,
    wait_for,
)
from tests.integration.devhost_process import HostProcess, host_env
from tests.integration.harness import mono_call, stereo_call

HOSTILE = 'inject/<script>alert("x")</script> & <b>bold</b>.wav'
INJECTED = [HOSTILE, "inject/second call.wav"]
GOOD = {
    "good/mono 1.wav": mono_call(),
    "good/mono 2.wav": mono_call(),
    "good/stereo 1.wav": stereo_call(),
    "good/stereo 2.wav": stereo_call(),
}
BAD = {"bad/empty.wav": (b"", "EmptyFile"), "bad/text.wav": (b"not audio " * 100, "NotAudio")}
ALL = [*INJECTED, *GOOD, *BAD]
_URL = re.compile(r"ops_status: \[GET\] http://localhost:(\d+)/api/status")


@dataclass
class App:
    """The running app: its API, its storage, and the emulator behind it."""

    api: httpx.Client
    env: dict[str, str]
    azurite: Azurite
    emulator: SpeechEmulator
    base_url: str

    @property
    def table(self) -> TableClient:
        return TableClient.from_connection_string(
            self.azurite.connection_string, self.env["JOBS_TABLE"]
        )

    @property
    def blobs(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.azurite.connection_string)

    def rows(self) -> dict[str, Any]:
        """Job rows by recording name (what actually happened)."""
        return {r["BlobName"]: r for r in self.table.query_entities("PartitionKey eq 'job'")}

    def names(self, container: str) -> list[str]:
        return sorted(b.name for b in self.blobs.get_container_client(container).list_blobs())

    def get(self, path: str, **params: Any) -> httpx.Response:
        response = self.api.get(path, params=params)
        assert DEV_ACCOUNT_KEY not in response.text  # never a key (nor its fragments)
        assert self.emulator.key not in response.text
        assert "sig=" not in response.text  # never a SAS
        return response

    def jobs(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/api/jobs", **params)
        assert response.status_code == 200, response.text
        return list(response.json()["jobs"])


@contextmanager
def running_ops_app(azurite: Azurite, tmp: Path) -> Iterator[App]:
    """The app under devhost, with its own emulator, after the whole batch ended."""
    emulator = start_speech_emulator(
        "--engine", "scripted", "--instant", log_path=tmp / "emulator.log"
    )
    env = host_env(azurite.connection_string, emulator, "ops")
    settings = tmp / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
    host = HostProcess(env, settings, tmp / "devhost.log")
    admin = httpx.Client(base_url=emulator.endpoint, timeout=10)
    try:
        port = wait_for(
            lambda: next((m[1] for line in host.lines if (m := _URL.search(line))), None),
            timeout=60,
            what="devhost to print the status page URL",
        )
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url, timeout=30) as api:
            app = App(api, env, azurite, emulator, base_url)
            _run_batch(app, admin)
            yield app
    finally:
        admin.close()
        host.managed.stop()
        emulator.stop()


def _run_batch(app: App, admin: httpx.Client) -> None:
    inputs = app.blobs.get_container_client(app.env["INPUT_CONTAINER"])
    inputs.create_container()
    fault = {"fail_share": 1.0, "fail_code": "InvalidAudioFormat"}
    admin.patch("/_emulator/config", json=fault).raise_for_status()
    for name in INJECTED:
        inputs.upload_blob(name, mono_call(), metadata={"transcript": '[["hello"]]'})
    wait_for(
        lambda: len(app.jobs(state="failed", prefix="inject/")) == len(INJECTED),
        timeout=60,
        what="the injected failures to be listed as failed",
    )
    admin.patch("/_emulator/config", json={"fail_share": 0.0}).raise_for_status()
    for name, audio in GOOD.items():
        inputs.upload_blob(name, audio, metadata={"transcript": '[["hello"],["hi"]]'})
    for name, (data, _) in BAD.items():
        inputs.upload_blob(name, data)

    def ended() -> bool:
        rows = app.rows()
        return set(rows) == set(ALL) and all(
            r["State"] in ("done", "failed", "rejected") for r in rows.values()
        )

    wait_for(ended, timeout=90, interval=0.3, what="every job of the batch to end")
