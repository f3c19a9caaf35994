"""Start and stop the local services the app runs against: Azurite and the Speech emulator.

Used by `make run`/`make demo`/`make bench` and by the test session, so that every local
run starts them the same way: as real subprocesses on free ports (port 0, the port each
one reports is read from its output) with their data in a directory we own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The well-known, public Azurite development account (documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEFAULT_SPEECH_KEY = "local-dev-key"

_AZURITE_READY = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at (\S+)"
)
_EMULATOR_READY = re.compile(r"listening on (http://\S+)")

T = TypeVar("T")


class ServiceError(RuntimeError):
    """A local service could not be started; the message says which and why."""


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns a truthy value, or raise TimeoutError after `timeout` s.

    This is how tests and tools synchronise with asynchronous work: on a condition with a
    deadline, never on a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def azurite_command() -> list[str]:
    """How to run the project's Azurite: its script under the Node.js the project installs.

    package.json pins both (`npm ci`): Azurite from 3.36 needs Node.js 22, whatever Node.js
    ran npm. Running the script with that node is what `npx azurite` does by putting
    ``node_modules/.bin`` first on PATH. Raises with advice when either is missing.
    """
    modules = PROJECT_ROOT / "node_modules"
    node = modules / ".bin" / "node"
    manifest = modules / "azurite" / "package.json"
    if not node.exists() or not manifest.exists():
        raise ServiceError(
            f"Azurite and its Node.js are not installed under {modules}. Run `make setup` "
            "(it runs `npm ci`; any Node.js with npm can install them)."
        )
    script = json.loads(manifest.read_text(encoding="utf-8"))["bin"]["azurite"]
    return [str(node), str((manifest.parent / script).resolve())]


class _OutputWatcher:
    """Reads a child's stdout in a thread: copies it to a log file and matches ready lines."""

    def __init__(self, stream: IO[str], log: IO[str] | None, pattern: re.Pattern[str]) -> None:
        self.matches: list[re.Match[str]] = []
        self.tail: list[str] = []
        self._cond = threading.Condition()
        self._stream = stream
        self._log = log
        self._pattern = pattern
        self.closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            if self._log is not None:
                self._log.write(line)
                self._log.flush()
            with self._cond:
                self.tail = [*self.tail[-40:], line.rstrip()]
                m = self._pattern.search(line)
                if m:
                    self.matches.append(m)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_matches(self, count: int, timeout: float) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.matches) < count and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.matches)


@dataclass
class ManagedProcess:
    """A child process we started, stopped (with its process group) by `stop()`."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group at once (crash simulation)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def _spawn(
    name: str,
    argv: Sequence[str],
    *,
    pattern: re.Pattern[str],
    ready_count: int,
    timeout: float,
    env: dict[str, str] | None,
    log_path: Path | None,
    cwd: Path | None = None,
) -> tuple[ManagedProcess, list[re.Match[str]]]:
    log: IO[str] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("a", encoding="utf-8")
    process = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,  # own process group: stop() takes children with it
    )
    assert process.stdout is not None
    watcher = _OutputWatcher(process.stdout, log, pattern)
    matches = watcher.wait_matches(ready_count, timeout)
    managed = ManagedProcess(name, process, log_path)
    if len(matches) < ready_count:
        managed.stop()
        tail = "\n".join(watcher.tail[-20:])
        raise ServiceError(f"{name} did not start within {timeout:.0f} s. Last output:\n{tail}")
    return managed, matches


@dataclass
class Azurite:
    """A running Azurite with blob, queue and table endpoints on 127.0.0.1."""

    data_dir: Path
    blob_port: int
    queue_port: int
    table_port: int
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: ManagedProcess | None = None
    # Keep the data in memory only: Azurite's on-disk mode rewrites its whole table database
    # every few seconds, which with 100,000s of rows costs more than the requests themselves.
    in_memory: bool = False
    _owns_data_dir: bool = field(default=False, repr=False)

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.blob_port}/{DEV_ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{self.host}:{self.queue_port}/{DEV_ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://{self.host}:{self.table_port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """A full connection string with explicit endpoints (works on any port)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start (or restart, on the same ports and data) the Azurite process."""
        argv = [
            *azurite_command(),
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            *(["--inMemoryPersistence"] if self.in_memory else ["--location", str(self.data_dir)]),
            "--blobHost",
            self.host,
            "--queueHost",
            self.host,
            "--tableHost",
            self.host,
            "--blobPort",
            str(self.blob_port),
            "--queuePort",
            str(self.queue_port),
            "--tablePort",
            str(self.table_port),
        ]
        proc, matches = _spawn(
            "Azurite",
            argv,
            pattern=_AZURITE_READY,
            ready_count=3,
            timeout=timeout,
            env=None,
            log_path=self.log_path,
        )
        ports = {m.group(1): int(m.group(2).rsplit(":", 1)[1]) for m in matches}
        self.blob_port, self.queue_port, self.table_port = (
            ports["Blob"],
            ports["Queue"],
            ports["Table"],
        )
        self.process = proc

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def close(self) -> None:
        """Stop and remove the data directory if we created it."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start_azurite(
    data_dir: Path | None = None,
    *,
    log_path: Path | None = None,
    ports: tuple[int, int, int] = (0, 0, 0),
    timeout: float = 30.0,
    in_memory: bool = False,
) -> Azurite:
    """Start Azurite on free ports (or the given ones), data in `data_dir` or a new temp dir
    (`in_memory`: data in memory only, lost when it stops; for benchmarks)."""
    owns = data_dir is None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="azurite-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    azurite = Azurite(
        data_dir=data_dir,
        blob_port=ports[0],
        queue_port=ports[1],
        table_port=ports[2],
        log_path=log_path,
        in_memory=in_memory,
        _owns_data_dir=owns,
    )
    azurite.start(timeout)
    return azurite


@dataclass
class SpeechEmulator:
    """A running local Speech service (`python -m speech_emulator`)."""

    url: str
    key: str
    process: ManagedProcess
    output: list[str]  # lines printed at start-up (custom model URLs among them)

    @property
    def endpoint(self) -> str:
        return self.url

    def custom_model_url(self, name: str) -> str:
        """The `self` URL the emulator printed for custom model `name`."""
        prefix = f"Custom model {name}: "
        for line in self.output:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise KeyError(f"the emulator printed no custom model named {name!r}")

    def stop(self) -> None:
        self.process.stop()


def start_speech_emulator(
    *args: str,
    key: str = DEFAULT_SPEECH_KEY,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> SpeechEmulator:
    """Start the Speech emulator on a free port with extra CLI `args` (e.g. `--engine scripted`)."""
    argv = [
        sys.executable,
        "-m",
        "speech_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--key",
        key,
        *args,
    ]
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    # Every line after the ready line (custom model URLs) is printed right after it.
    pattern = re.compile(rf"{_EMULATOR_READY.pattern}|^(Custom model .*)$")
    custom_models = sum(1 for a in args if a == "--custom-model") + sum(
        1 for a in args if a.startswith("--custom-model=")
    )
    proc, matches = _spawn(
        "Speech emulator",
        argv,
        pattern=pattern,
        ready_count=1 + custom_models,
        timeout=timeout,
        env=child_env,
        log_path=log_path,
        cwd=PROJECT_ROOT,
    )
    url = next(m.group(1) for m in matches if m.group(1))
    output = [m.group(2) for m in matches if m.group(2)]
    return SpeechEmulator(url=url.rstrip("/"), key=key, process=proc, output=output)
