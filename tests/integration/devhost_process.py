"""`python -m devhost` running the app plus its sweep timer as a subprocess, and the checks
that every input ended exactly once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient

from devhost.services import PROJECT_ROOT, ManagedProcess, SpeechEmulator, wait_for


class HostProcess:
    """`python -m devhost` running function_app, output kept for waiting on."""

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
            "function_app",
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

    def unfinished(self) -> list[str]:
        """Functions whose execution was logged as started but not as ended (in flight)."""
        started: dict[str, str] = {}
        for line in list(self.lines):
            if match := _EXECUTING.search(line):
                started[match["id"]] = match["function"]
            elif match := _EXECUTED.search(line):
                started.pop(match["id"], None)
        return sorted(started.values())


# devhost's (and `func start`'s) execution log lines; see devhost/invoker.py.
_EXECUTING = re.compile(r"Executing 'Functions\.(?P<function>\w+)' \(.*Id=(?P<id>[0-9a-f-]{36})\)$")
_EXECUTED = re.compile(r"Executed 'Functions\.\w+' \(\w+, Id=(?P<id>[0-9a-f-]{36})")


def host_env(connection_string: str, emulator: SpeechEmulator, tag: str) -> dict[str, str]:
    """Environment for a devhost subprocess: its own names, fast schedules, short leases."""
    uid = uuid.uuid4().hex[:8]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPEECH_", "POLL_"))},
        "INPUT_CONTAINER": f"{tag}-in-{uid}",
        "OUTPUT_CONTAINER": f"{tag}-out-{uid}",
        "ERROR_CONTAINER": f"{tag}-err-{uid}",
        "JOBS_TABLE": f"{tag}jobs{uid}",
        "COMPLETION_QUEUE": f"{tag}-done-{uid}",
        "AzureWebJobsStorage": connection_string,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_KEY": emulator.key,
        "POLL_SCHEDULE": "* * * * * *",
        "POLL_MIN_INTERVAL_SECONDS": "0",
        "SWEEP_SCHEDULE": "*/3 * * * * *",
        "SWEEP_MIN_AGE_SECONDS": "2",
        # A job a killed host left half-done is taken over after this lease.
        "JOB_LEASE_SECONDS": "5",
        "AzureFunctionsWebHost__hostid": f"{tag}-{uid}",
        "PYTHONUNBUFFERED": "1",
    }


def job_timelines(emulator: SpeechEmulator) -> list[dict[str, Any]]:
    """Every job the Speech emulator ever held: displayName, created, finished, status."""
    return list(job_timelines_by_id(emulator).values())


def job_timelines_by_id(emulator: SpeechEmulator) -> dict[str, dict[str, Any]]:
    """`job_timelines` by transcription id."""
    response = httpx.get(f"{emulator.endpoint}/_emulator/stats", timeout=10)
    response.raise_for_status()
    return dict(response.json()["jobs"])


def service_jobs(emulator: SpeechEmulator) -> list[Any]:
    """The transcriptions the Speech emulator still holds."""
    response = httpx.get(
        f"{emulator.endpoint}/speechtotext/transcriptions",
        params={"api-version": "2024-11-15"},
        headers={"Ocp-Apim-Subscription-Key": emulator.key},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["values"])


ENDED = ("done", "failed", "rejected")


def jobs_in_flight(connection_string: str, env: dict[str, str]) -> list[str]:
    """The recordings whose job has started and not ended (no table yet: none)."""
    table = TableClient.from_connection_string(connection_string, env["JOBS_TABLE"])
    try:
        rows = list(table.query_entities("PartitionKey eq 'job'"))
    except ResourceNotFoundError:
        return []
    return sorted(r["BlobName"] for r in rows if r["State"] not in ENDED)


def wait_until_settled(
    connection_string: str,
    env: dict[str, str],
    emulator: SpeechEmulator,
    names: list[str],
    *,
    note: str = "",
    timeout: float = 90,
) -> None:
    """Wait until every recording has a job and every job has ended, and the service is empty.

    Ended, not necessarily done: `assert_each_input_once` then says what went wrong.
    """
    table = TableClient.from_connection_string(connection_string, env["JOBS_TABLE"])

    def ended() -> bool:
        rows = list(table.query_entities("PartitionKey eq 'job'"))
        return {r["BlobName"] for r in rows} >= set(names) and all(
            r["State"] in ENDED for r in rows
        )

    wait_for(ended, timeout=timeout, interval=0.5, what=f"every job to end {note}")
    wait_for(lambda: service_jobs(emulator) == [], timeout=30, what="no server-side jobs")


def assert_each_input_once(
    connection_string: str,
    env: dict[str, str],
    emulator: SpeechEmulator,
    names: list[str],
    *,
    note: str = "",
    failures_allowed: frozenset[str] = frozenset(),
    stalled_runs: bool = False,
) -> list[str]:
    """One job per input version, ended with exactly one outcome, no duplicate POST.

    The outcome must be `done` with one set of outputs, or, for a job failed with a code in
    `failures_allowed`, an error report and no outputs. Returns the names that failed.

    `stalled_runs`: a run stalled past the job's lease (a storage outage longer than the
    tests' 5 s JOB_LEASE_SECONDS; in production the lease equals functionTimeout) may still
    POST once the lease passed to another run; it then loses the record update and deletes
    its transcription at once. Then only "never two results per input" is checked.
    """
    service = BlobServiceClient.from_connection_string(connection_string)
    table = TableClient.from_connection_string(connection_string, env["JOBS_TABLE"])
    rows = list(table.query_entities("PartitionKey eq 'job'"))
    versions = Counter((r["BlobName"], r["BlobETag"]) for r in rows)
    assert sorted(n for n, _ in versions) == sorted(names), note  # one job per version
    assert set(versions.values()) == {1}, note
    failed = sorted(
        r["BlobName"]
        for r in rows
        if r["State"] == "failed" and r.get("ErrorCode") in failures_allowed
    )
    states = {r["BlobName"]: (r["State"], r.get("ErrorCode")) for r in rows}
    done = sorted(n for n, (state, _) in states.items() if state == "done")
    assert sorted(done + failed) == sorted(names), (states, note)
    errors = service.get_container_client(env["ERROR_CONTAINER"])
    assert sorted(b.name.removesuffix(".json") for b in errors.list_blobs()) == failed, note
    per_recording: dict[str, list[str]] = {}
    for blob in service.get_container_client(env["OUTPUT_CONTAINER"]).list_blobs():
        recording, _, product = blob.name.rpartition("/")
        per_recording.setdefault(recording, []).append(product)
    assert sorted(per_recording) == done, note
    for recording, products in per_recording.items():
        assert len(products) == len(set(products)), recording
        assert "channel_0.json" in products, recording
    jobs = job_timelines(emulator)
    created = Counter(job["displayName"] for job in jobs)
    failed_there = Counter(job["displayName"] for job in jobs if job["status"] == "Failed")
    succeeded = Counter(job["displayName"] for job in jobs if job["status"] == "Succeeded")
    for row in rows:
        # Each service-side job is one recorded submission, or a failed job found by its
        # displayName after a crash (deleted, then submitted again): a POST whose outcome a
        # crash hid was adopted, never posted twice. And never two results for one input.
        key = row["RowKey"]
        if not stalled_runs:
            assert created[key] - failed_there[key] <= row["Attempts"], (row["BlobName"], note)
        assert succeeded[key] <= 1, (row["BlobName"], note)
    return failed
