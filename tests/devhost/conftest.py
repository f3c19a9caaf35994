"""Helpers for devhost tests: fixture apps loaded fresh, storage settings per test."""

from __future__ import annotations

import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from devhost.host import DevHost
from devhost.host_config import BlobOptions, HostConfig, QueueOptions
from devhost.indexing import find_function_app, import_app_module, index_app
from devhost.services import Azurite

APPS = Path(__file__).parent / "apps"


def load_fixture_app(name: str) -> ModuleType:
    """Execute tests/devhost/apps/<name>.py afresh (new app object, empty call records)."""
    return import_app_module(f"{name}.py", APPS)


def unique(prefix: str) -> str:
    """A storage-safe unique name (containers/queues: lowercase, digits, dashes)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


FAST_CONFIG = HostConfig(
    queues=QueueOptions(
        batch_size=4, max_dequeue_count=3, visibility_timeout=0.0, max_polling_interval=0.5
    ),
    blobs=BlobOptions(max_degree_of_parallelism=4, poison_blob_threshold=5),
    function_timeout=60.0,
)


@pytest.fixture(autouse=True)
def _no_ambient_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported AzureWebJobsStorage must not leak into these tests."""
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)


@pytest.fixture
def storage_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """AzureWebJobsStorage pointing at the session Azurite, fresh names for this test."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("DEVHOST_TEST_CONTAINER", unique("in"))
    monkeypatch.setenv("DEVHOST_TEST_STREAM_CONTAINER", unique("st"))
    monkeypatch.setenv("DEVHOST_TEST_QUEUE", unique("q"))
    monkeypatch.setenv("AzureFunctionsWebHost__hostid", unique("host"))
    return azurite


HostFactory = Callable[..., DevHost]


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[HostFactory]:
    """Build DevHosts for an indexed app; every host is stopped at the end of the test."""
    hosts: list[DevHost] = []

    def make(app_or_specs: ModuleType | list, **options: object) -> DevHost:
        specs = (
            index_app(find_function_app(app_or_specs))
            if isinstance(app_or_specs, ModuleType)
            else app_or_specs
        )
        options.setdefault("host_config", FAST_CONFIG)
        host = DevHost(specs, root=tmp_path, **options)  # type: ignore[arg-type]
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.stop(wait=False)


class Output:
    """Collects a child's output lines in a thread so the test can wait on them."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._stream = process.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str) -> re.Match[str] | None:
        for line in list(self.lines):
            match = re.search(pattern, line)
            if match:
                return match
        return None

    def text(self) -> str:
        return "\n".join(self.lines)
