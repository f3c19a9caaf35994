"""`python -m devhost --instances N`: several processes on one Azurite, coordinated as the
Functions host coordinates its instances (singleton timers, leased blob receipts, shared
queues). The fixture app records every run as a blob named after what ran and which
process ran it, so duplicates and takeovers are read from storage.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.blob_trigger import HOSTS_CONTAINER
from devhost.services import PROJECT_ROOT, Azurite, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "tests/devhost/apps/instances_app.py"


class Instances:
    """`python -m devhost --instances N` running the fixture app; output kept."""

    def __init__(self, azurite: Azurite, tmp_path: Path, count: int) -> None:
        uid = uuid.uuid4().hex[:8]
        self.results = f"results-{uid}"
        self.input = f"input-{uid}"
        self.queue = f"queue-{uid}"
        self.host_id = f"inst-{uid}"
        self.blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
        self.blobs.create_container(self.results)
        self.blobs.create_container(self.input)
        queues = QueueServiceClient.from_connection_string(azurite.connection_string)
        self.queue_client = queues.get_queue_client(self.queue)
        self.queue_client.create_queue()
        settings = tmp_path / "local.settings.json"
        settings.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "AzureFunctionsWebHost__hostid": self.host_id,
            "DEVHOST_TEST_RESULTS": self.results,
            "DEVHOST_TEST_INPUT": self.input,
            "DEVHOST_TEST_QUEUE": self.queue,
            "DEVHOST_TEST_SCHEDULE": "* * * * * *",
            "PYTHONUNBUFFERED": "1",
        }
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "--root",
                str(PROJECT_ROOT),
                "--app",
                APP,
                "--settings",
                str(settings),
                "--port",
                "0",
                "--blob-scan-interval",
                "0.2",
                "--instances",
                str(count),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.pids = wait_for(
            lambda: self._pids(count), timeout=30, what=f"{count} instances to start"
        )
        wait_for(
            lambda: sum("Host started" in line for line in list(self.lines)) == count,
            timeout=60,
            what="every instance to start its triggers",
        )

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _pids(self, count: int) -> list[int] | None:
        found = [
            int(m.group(1))
            for line in list(self.lines)
            if (m := re.search(r"devhost instance \d+ started \(pid (\d+)", line))
        ]
        return found if len(found) == count else None

    def records(self, kind: str) -> dict[str, list[int]]:
        """What ran (a tick, a blob, a message) -> the pids that ran it."""
        ran: dict[str, list[int]] = defaultdict(list)
        container = self.blobs.get_container_client(self.results)
        for blob in container.list_blobs(name_starts_with=f"{kind}/"):
            what, _, pid = blob.name[len(kind) + 1 :].rpartition("/")
            ran[what].append(int(pid))
        return ran

    def when(
        self, kind: str, ready: Callable[[dict[str, list[int]]], bool]
    ) -> Callable[[], dict[str, list[int]] | None]:
        """A `wait_for` predicate: the records of `kind` once `ready` holds for them."""

        def check() -> dict[str, list[int]] | None:
            found = self.records(kind)
            return found if ready(found) else None

        return check

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def three(azurite: Azurite, tmp_path: Path) -> Iterator[Instances]:
    instances = Instances(azurite, tmp_path, 3)
    try:
        yield instances
    finally:
        instances.stop()


@pytest.fixture
def two(azurite: Azurite, tmp_path: Path) -> Iterator[Instances]:
    instances = Instances(azurite, tmp_path, 2)
    try:
        yield instances
    finally:
        instances.stop()


def test_three_instances_share_timers_blobs_and_queue_messages(three: Instances) -> None:
    names = [f"call-{i}.wav" for i in range(12)]
    for name in names:
        three.blobs.get_blob_client(three.input, name).upload_blob(b"x")
    for i in range(12):
        three.queue_client.send_message(base64.b64encode(f"m{i}".encode()).decode())

    ticks = wait_for(
        three.when("tick", lambda r: len(r) >= 5),
        timeout=60,
        what="five timer occurrences",
    )
    # Every occurrence but the newest (whose record may still be written) ran exactly once,
    # all on one instance: the holder of the singleton lock.
    finished = sorted(ticks)[:-1]
    assert all(len(ticks[t]) == 1 for t in finished), dict(ticks)
    assert len({ticks[t][0] for t in finished}) == 1

    # Blobs: every receipt completed (no instance will run them again), then one run each.
    def receipts_done() -> bool:
        hosts = three.blobs.get_container_client(HOSTS_CONTAINER)
        prefix = f"blobreceipts/{three.host_id}/Host.Functions.on_blob/"
        done = [
            b
            for b in hosts.list_blobs(name_starts_with=prefix, include=["metadata"])
            if (b.metadata or {}).get("Completed") == "true"
        ]
        return len(done) == len(names)

    wait_for(receipts_done, timeout=60, what="every blob receipt to be completed")
    blobs = three.records("blob")
    assert sorted(blobs) == sorted(names)
    assert all(len(pids) == 1 for pids in blobs.values()), dict(blobs)
    assert {pid for pids in blobs.values() for pid in pids} <= set(three.pids)

    # Queue messages: each taken by one instance (a message is deleted once run).
    queue = wait_for(
        three.when("queue", lambda r: len(r) == 12),
        timeout=60,
        what="every queue message to run",
    )
    wait_for(
        lambda: three.queue_client.get_queue_properties().approximate_message_count == 0,
        timeout=30,
        what="the queue to be empty",
    )
    assert all(len(pids) == 1 for pids in queue.values()), dict(queue)


def test_a_killed_instances_timer_is_taken_over(two: Instances) -> None:
    first = wait_for(
        two.when("tick", lambda r: len(r) >= 2),
        timeout=60,
        what="the timer to run",
    )
    holder = next(iter(first.values()))[0]
    assert holder in two.pids
    os.kill(holder, signal.SIGKILL)  # no clean stop: its lease must run out
    survivor = next(pid for pid in two.pids if pid != holder)

    taken_over = wait_for(
        two.when("tick", lambda r: survivor in {p for ps in r.values() for p in ps}),
        timeout=60,
        what="the surviving instance to run the timer",
    )
    assert all(len(pids) == 1 for pids in taken_over.values()), dict(taken_over)
    assert any("Singleton lock acquired" in line and "[instance" in line for line in two.lines)
