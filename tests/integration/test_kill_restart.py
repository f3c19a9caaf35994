"""SIGKILL the local Functions host at random points across a batch, restart it, repeat.

Azurite, the Speech emulator (jobs take ~1.5 s) and `python -m devhost` (the app plus its
sweep timer, `tests.integration.sweep_app`) run as subprocesses. devhost is killed with
SIGKILL (its whole process group) 6 times at seeded random moments while recordings arrive,
restarted each time, then left to finish. Afterwards every recording has exactly one set of
outputs and one `done` job, the service holds no transcription, and no recording ever had
more service-side jobs than its recorded submission attempts (no duplicate POST).
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient

from devhost.services import PROJECT_ROOT, Azurite, ManagedProcess, SpeechEmulator, wait_for
from tests.conftest import EmulatorFactory
from tests.integration.harness import mono_call, stereo_call

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261121
KILLS = 6
RECORDINGS = 16


class HostProcess:
    """`python -m devhost --app tests.integration.sweep_app`, output kept for waiting on."""

    def __init__(self, env: dict[str, str], settings: Path, log: Path) -> None:
        self.lines: list[str] = []
        self._log = log.open("a", encoding="utf-8")
        argv = [
            sys.executable,
            "-m",
            "devhost",
            "--root",
            str(PROJECT_ROOT),
            "--app",
            "tests.integration.sweep_app",
            "--port",
            "0",
            "--settings",
            str(settings),
            "--blob-scan-interval",
            "0.3",
            "--queue-lease",
            "3",
        ]
        process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # own process group: kill() takes its threads with it
        )
        self.managed = ManagedProcess("devhost", process)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.managed.process.stdout is not None
        for line in self.managed.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._log.write(line)
            self._log.flush()

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))


@pytest.fixture
def emulator(speech_emulator_factory: EmulatorFactory) -> SpeechEmulator:
    return speech_emulator_factory(
        "--engine", "scripted", "--start-delay", "0.3", "--processing-time", "1.5"
    )


@pytest.fixture
def env(azurite: Azurite, emulator: SpeechEmulator) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPEECH_", "POLL_"))},
        "INPUT_CONTAINER": f"kill-in-{tag}",
        "OUTPUT_CONTAINER": f"kill-out-{tag}",
        "ERROR_CONTAINER": f"kill-err-{tag}",
        "JOBS_TABLE": f"killjobs{tag}",
        "COMPLETION_QUEUE": f"kill-done-{tag}",
        "AzureWebJobsStorage": azurite.connection_string,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_KEY": emulator.key,
        "POLL_SCHEDULE": "* * * * * *",
        "POLL_MIN_INTERVAL_SECONDS": "0",
        "SWEEP_SCHEDULE": "*/3 * * * * *",
        "SWEEP_GRACE_SECONDS": "2",
        # A job a killed host left half-done is taken over after this lease.
        "JOB_LEASE_SECONDS": "5",
        "AzureFunctionsWebHost__hostid": f"kill-{tag}",
        "PYTHONUNBUFFERED": "1",
    }


def _service_jobs(emulator: SpeechEmulator) -> list[Any]:
    response = httpx.get(
        f"{emulator.endpoint}/speechtotext/transcriptions",
        params={"api-version": "2024-11-15"},
        headers={"Ocp-Apim-Subscription-Key": emulator.key},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["values"])


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
            kills.append(f"run {run}: killed after {executed} executions")
        finally:
            host.managed.stop()
        for name in waves[KILLS] if run == KILLS // 2 else []:
            inputs.upload_blob(name, mono_call(), metadata={"transcript": '[["down"]]'})

    final = HostProcess(env, settings, tmp_path / "devhost-final.log")
    outputs = service.get_container_client(env["OUTPUT_CONTAINER"])
    table = TableClient.from_connection_string(azurite.connection_string, env["JOBS_TABLE"])
    try:
        wait_for(
            lambda: (
                sorted(
                    b.name.removesuffix("/transcript.txt")
                    for b in outputs.list_blobs()
                    if b.name.endswith("/transcript.txt")
                )
                == names
            ),
            timeout=90,
            interval=0.5,
            what=f"every recording's outputs ({kills})",
        )
        wait_for(
            lambda: all(r["State"] == "done" for r in table.list_entities()),
            timeout=30,
            interval=0.5,
            what="every job to be done",
        )
        wait_for(lambda: _service_jobs(emulator) == [], timeout=30, what="no server-side jobs")
    finally:
        final.managed.stop()

    rows = list(table.query_entities("PartitionKey eq 'job'"))
    versions = Counter((r["BlobName"], r["BlobETag"]) for r in rows)
    assert sorted(n for n, _ in versions) == names  # one job per input version ...
    assert set(versions.values()) == {1}
    assert {r["State"] for r in rows} == {"done"}  # ... and it is done
    errors = service.get_container_client(env["ERROR_CONTAINER"])
    assert [b.name for b in errors.list_blobs()] == []
    per_recording: dict[str, list[str]] = {}
    for blob in outputs.list_blobs():
        recording, _, product = blob.name.rpartition("/")
        per_recording.setdefault(recording, []).append(product)
    for recording, products in per_recording.items():
        assert len(products) == len(set(products)), recording
        assert "channel_0.json" in products
    stats = httpx.get(f"{emulator.endpoint}/_emulator/stats", timeout=10).json()
    created = Counter(job["displayName"] for job in stats["jobs"].values())
    for row in rows:
        # Each service-side job is one recorded submission: a POST whose outcome a kill
        # hid was found by its displayName and adopted, never posted twice.
        assert created[row["RowKey"]] <= row["Attempts"], (row["BlobName"], kills)
    assert len(kills) == KILLS
    assert time.monotonic() - started < 150
