"""The processes behind `make run` and `make demo`: Azurite, the Speech service, the app.

Each one is registered on an ExitStack as it starts, so whatever happens next (an error,
Ctrl+C, SIGTERM) stops everything started so far, in reverse order.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devhost.local_settings import ensure_local_settings, read_values
from devhost.services import (
    Azurite,
    ManagedProcess,
    SpeechEmulator,
    start_azurite,
    start_speech_emulator,
)
from devhost.stack_config import StackError

DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)
ENGINES = ("sphinx", "scripted")


def say(message: str = "") -> None:
    """Progress for the user, unbuffered."""
    print(message, flush=True)


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def file_settings(root: Path) -> dict[str, str]:
    """Values of local.settings.json, else of the sample (what the app will load)."""
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = root / name
        if path.exists():
            return read_values(path)
    return {}


@dataclass
class Services:
    """Azurite and the Speech emulator, started for this run."""

    azurite: Azurite
    emulator: SpeechEmulator
    model_url: str


def start_services(
    stack: ExitStack,
    *,
    data_dir: Path,
    log_dir: Path,
    phrases: Path | None,
    default_ports: bool,
    engine: str = "sphinx",
) -> Services:
    """Start Azurite (data in `data_dir`) and the sphinx Speech emulator; registered to stop."""
    ports = (0, 0, 0)
    if default_ports:
        if all(port_free(p) for p in DEFAULT_AZURITE_PORTS):
            ports = DEFAULT_AZURITE_PORTS
        else:
            say(
                "Ports 10000-10002 are in use (another Azurite?); starting ours on free "
                "ports instead: use the connection string printed below."
            )
    say(f"Starting Azurite (data in {data_dir}) ...")
    azurite = start_azurite(data_dir, log_path=log_dir / "azurite.log", ports=ports)
    stack.callback(azurite.stop)
    args = ["--engine", engine]
    if phrases is not None:
        args += ["--custom-model", f"demo={phrases}"]
    say(f"Starting the local Speech service ({engine} engine) ...")
    emulator = start_speech_emulator(*args, log_path=log_dir / "emulator.log")
    stack.callback(emulator.stop)
    # The app takes the model's URL without a query string (it adds its own api-version).
    model_url = emulator.custom_model_url("demo").split("?", 1)[0] if phrases is not None else ""
    say(f"Speech service: {emulator.endpoint}")
    if model_url:
        say(f"Custom model (from {phrases.name if phrases else ''}): {model_url}")
    return Services(azurite=azurite, emulator=emulator, model_url=model_url)


def owned_settings(services: Services) -> dict[str, str]:
    """The settings that point the app at the services started here."""
    return {
        "AzureWebJobsStorage": services.azurite.connection_string,
        "SPEECH_ENDPOINT": services.emulator.endpoint,
        "SPEECH_KEY": services.emulator.key,
        "SPEECH_MODEL": services.model_url,
    }


def prepare_storage(settings: Mapping[str, str]) -> None:
    """Create the app's containers, table and queues (the app's own routine, one source)."""
    from shared.errors import ConfigurationError  # noqa: PLC0415 - the app package
    from shared.settings import Settings  # noqa: PLC0415
    from shared.storage import StorageClients, ensure_resources  # noqa: PLC0415

    try:
        app_settings = Settings.from_env(settings)
    except ConfigurationError as exc:
        raise StackError(f"the app's settings are invalid: {exc}") from exc
    clients = StorageClients.from_setting(settings, app_settings.storage_connection)
    ensure_resources(clients, app_settings)


def start_app(
    stack: ExitStack,
    *,
    root: Path,
    env: dict[str, str],
    runner: str,
    port: int,
    log: IO[str] | None,
    instances: int = 1,
) -> ManagedProcess:
    """Start the app with `func start` or devhost as a child process (own process group);
    devhost as `instances` processes on one storage account when more than one."""
    if runner == "func":
        # Core Tools start the Python worker with the `python` on PATH: make it this venv's.
        ensure_local_settings(root / "local.settings.json")
        env = {
            **env,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
        argv = ["func", "start", "--port", str(port or 7071)]
    else:
        argv = [
            sys.executable,
            "-m",
            "devhost",
            "--root",
            str(root),
            "--port",
            str(port),
            "--blob-scan-interval",
            "1",
            *(["--instances", str(instances)] if instances > 1 else []),
        ]
    say(f"Starting the app with {'func start' if runner == 'func' else 'devhost'} ...")
    process = subprocess.Popen(
        argv,
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        text=True,
        start_new_session=True,  # Ctrl+C reaches us only; we stop it in order
    )
    managed = ManagedProcess("app", process)
    stack.callback(managed.stop, 20.0)
    return managed
