"""The benchmark's stack: Azurite, the Speech emulator and the app (devhost) as subprocesses.

Each run gets fresh services and its own directory (settings file, logs, Azurite data), so a
polling run and a web-hook run are measured from the same empty start. The app runs as
`python -m bench.app_host`, i.e. devhost plus the storage request counter.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables import TableClient

from devhost.services import (
    PROJECT_ROOT,
    Azurite,
    ManagedProcess,
    SpeechEmulator,
    start_azurite,
    start_speech_emulator,
    wait_for,
)
from shared.settings import Settings
from shared.storage import StorageClients, ensure_resources

# Settings the app reads; the bench sets them all so nothing leaks in from the caller's shell.
_APP_SETTING_PREFIXES = ("SPEECH_", "POLL_", "WEBHOOK_", "AzureWebJobs")


class BenchError(RuntimeError):
    """The benchmark cannot run or a run failed; the message says what and what to do."""


@dataclass(frozen=True)
class StackOptions:
    """How the services and the app are configured for one run."""

    processing_time_s: float
    rate_limit: str
    poll_schedule: str
    poll_min_interval_s: float
    blob_scan_interval_s: float = 1.0
    extra_settings: Mapping[str, str] | None = None


@dataclass
class Stack:
    """A running stack: handles and the files the app writes."""

    run_dir: Path
    azurite: Azurite
    emulator: SpeechEmulator
    app: ManagedProcess
    app_port: int
    settings: dict[str, str]
    app_log: Path
    counts_file: Path
    webhook_secret: str

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def emulator_stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats`` (not a Speech call: not counted)."""
        response = httpx.get(f"{self.emulator.endpoint}/_emulator/stats", timeout=60.0)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop_app(self) -> None:
        """SIGTERM the app and wait: it finishes running invocations and writes its counts."""
        self.app.stop(timeout=60.0)

    def batch_keys(self) -> dict[str, str]:
        """Job key -> the key of the batch that held it (jobs never batched are absent)."""
        table = TableClient.from_connection_string(
            self.azurite.connection_string, self.settings["JOBS_TABLE"]
        )
        rows = table.query_entities("PartitionKey eq 'job'", select=["RowKey", "BatchKey"])
        return {str(r["RowKey"]): str(r["BatchKey"]) for r in rows if r.get("BatchKey")}

    def storage_counts(self) -> dict[str, Any]:
        """The app process's storage tallies (written on exit and every few seconds)."""
        if not self.counts_file.exists():
            return {"requests": {}, "channel_0_written": {}}
        result: dict[str, Any] = json.loads(self.counts_file.read_text(encoding="utf-8"))
        return result


def free_port() -> int:
    """A port nothing listens on now (the app binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_settings(
    azurite: Azurite, emulator: SpeechEmulator, options: StackOptions, secret: str
) -> dict[str, str]:
    """The app's settings for one run: fresh, unique container/queue/table names."""
    uid = uuid.uuid4().hex[:8]
    settings = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_KEY": emulator.key,
        "INPUT_CONTAINER": f"bench-in-{uid}",
        "OUTPUT_CONTAINER": f"bench-out-{uid}",
        "ERROR_CONTAINER": f"bench-err-{uid}",
        "JOBS_TABLE": f"benchjobs{uid}",
        "COMPLETION_QUEUE": f"bench-done-{uid}",
        "POLL_SCHEDULE": options.poll_schedule,
        "POLL_MIN_INTERVAL_SECONDS": f"{options.poll_min_interval_s:g}",
        "WEBHOOK_SECRET": secret,
        "SPEECH_RATE_LIMIT": app_rate_limit(options.rate_limit),
    }
    settings.update(options.extra_settings or {})
    return settings


def app_rate_limit(service_limit: str) -> str:
    """The app's own SPEECH_RATE_LIMIT for a service limit `N/S`: 90 % of it, like the default
    90/10 under the real 100/10 tier, so a bench with a higher service limit is not capped."""
    if not service_limit or service_limit.lower() in {"0", "off"}:
        return "off"
    calls, _, seconds = service_limit.partition("/")
    return f"{max(1, int(int(calls) * 0.9))}/{seconds}"


def child_env(settings: Mapping[str, str], counts_file: Path) -> dict[str, str]:
    """The app's environment: ours without any app setting, plus the run's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_APP_SETTING_PREFIXES) and k not in settings
    }
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    env["BENCH_STORAGE_COUNTS"] = str(counts_file)
    return env


def wait_ready(process: ManagedProcess, log: Path, timeout: float) -> None:
    def ready() -> bool:
        if not process.alive():
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise BenchError(f"the app (devhost) exited during start-up. Its log ends:\n{tail}")
        return log.exists() and "Application started" in log.read_text(
            encoding="utf-8", errors="replace"
        )

    try:
        wait_for(ready, timeout=timeout, interval=0.2, what="the app to start")
    except TimeoutError as exc:
        raise BenchError(f"the app did not start within {timeout:.0f} s; see {log}") from exc


def start_services(
    stack: contextlib.ExitStack, run_dir: Path, processing_time_s: float, rate_limit: str
) -> tuple[Azurite, SpeechEmulator]:
    """Azurite (its data dropped at the end) and the scripted Speech emulator, both stopped
    when `stack` closes."""
    azurite = start_azurite(run_dir / "azurite", log_path=run_dir / "azurite.log")
    stack.callback(shutil.rmtree, azurite.data_dir, True)
    stack.callback(azurite.stop)
    emulator = start_speech_emulator(
        "--engine",
        "scripted",
        "--start-delay",
        "0",
        "--processing-time",
        f"{processing_time_s:g}",
        "--rate-limit",
        rate_limit,
        "--log-level",
        "warning",
        log_path=run_dir / "emulator.log",
    )
    stack.callback(emulator.stop)
    return azurite, emulator


def write_settings(run_dir: Path, settings: dict[str, str]) -> Path:
    """Create the app's storage resources with its own routine (one source), then write
    `local.settings.json` for the app processes; its path."""
    app_config = Settings.from_env(settings)
    ensure_resources(
        StorageClients.from_setting(settings, app_config.storage_connection), app_config
    )
    settings_file = run_dir / "local.settings.json"
    settings_file.write_text(
        json.dumps({"IsEncrypted": False, "Values": settings}, indent=2), encoding="utf-8"
    )
    return settings_file


def launch_app(
    stack: contextlib.ExitStack,
    settings_file: Path,
    settings: dict[str, str],
    *,
    name: str,
    port: int,
    log: Path,
    counts_file: Path,
    blob_scan_interval_s: float,
    extra_args: tuple[str, ...] = (),
) -> ManagedProcess:
    """Start the app (`bench.app_host`, devhost plus the storage counter) as a process of its
    own, stopped when `stack` closes; not waited for (see `wait_ready`)."""
    argv = [
        sys.executable,
        "-m",
        "bench.app_host",
        "--root",
        str(PROJECT_ROOT),
        "--settings",
        str(settings_file),
        "--port",
        str(port),
        "--blob-scan-interval",
        f"{blob_scan_interval_s:g}",
        *extra_args,
    ]
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=child_env(settings, counts_file),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    app = ManagedProcess(name, process, log)
    stack.callback(app.stop, 60.0)
    return app


@contextmanager
def running_stack(run_dir: Path, options: StackOptions) -> Iterator[Stack]:
    """Start Azurite, the emulator and the app; stop them all (and drop Azurite's data) after."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        azurite, emulator = start_services(
            stack, run_dir, options.processing_time_s, options.rate_limit
        )
        secret = secrets.token_hex(16)
        settings = app_settings(azurite, emulator, options, secret)
        settings_file = write_settings(run_dir, settings)
        port = free_port()
        app_log = run_dir / "app.log"
        counts_file = run_dir / "storage-counts.json"
        app = launch_app(
            stack,
            settings_file,
            settings,
            name="app",
            port=port,
            log=app_log,
            counts_file=counts_file,
            blob_scan_interval_s=options.blob_scan_interval_s,
        )
        wait_ready(app, app_log, timeout=60.0)
        yield Stack(
            run_dir=run_dir,
            azurite=azurite,
            emulator=emulator,
            app=app,
            app_port=port,
            settings=settings,
            app_log=app_log,
            counts_file=counts_file,
            webhook_secret=secret,
        )


def register_webhook(stack: Stack, path: str, timeout: float = 20.0) -> None:
    """Register the app's web hook with the documented command (`python -m
    shared.webhook_admin register`), which waits for the service's challenge.

    Raises BenchError("web hook function not found ...") when the app does not answer it.
    """
    url = f"{stack.app_url}{path}"
    env = child_env(stack.settings, stack.counts_file)  # SPEECH_*, WEBHOOK_SECRET
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.webhook_admin",
            "register",
            "--url",
            url,
            "--secret-from-env",
            "WEBHOOK_SECRET",
            "--wait",
            f"{timeout:g}",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    status = _hook_status(proc.stdout)
    if proc.returncode != 0 or status != "Succeeded":
        raise BenchError(
            f"web hook function not found: the app did not answer the registration challenge "
            f"at {url} (exit {proc.returncode}, status {status or 'unknown'}: "
            f"{proc.stderr.strip()[-600:]}). The app needs an HTTP function on that route "
            "that echoes `validationToken` (shared/webhook*.py, wired in function_app.py)."
        )


def _hook_status(output: str) -> str | None:
    """The `status` of the hook entity that `webhook_admin register` prints last (JSON)."""
    start = output.find("{")
    if start < 0:
        return None
    try:
        entity = json.loads(output[start:])
    except json.JSONDecodeError:
        return None
    return entity.get("status") if isinstance(entity, dict) else None
