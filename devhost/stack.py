"""`make run`, `make demo`, `make upload`: the whole app locally, no Azure account.

    python -m devhost.stack run             # Azurite + Speech emulator + the app; Ctrl+C stops all
    python -m devhost.stack demo            # one shot: transcribe samples/, print, stop
    python -m devhost.stack upload FILE     # drop a recording into the input container

The app runs with `func start` when Core Tools are on PATH (or RUNNER=func), else with
devhost. Every process started here is stopped on exit, Ctrl+C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from azure.core.exceptions import ResourceExistsError, ServiceRequestError
from azure.storage.blob import BlobServiceClient, ContentSettings

from devhost.connections import expand_connection_string
from devhost.demo import AUDIO_SUFFIXES, command_demo
from devhost.local_settings import LocalSettingsError
from devhost.services import (
    PROJECT_ROOT,
    Azurite,
    ServiceError,
)
from devhost.stack_config import (
    RUN_PORT,
    DropInstructions,
    StackError,
    child_environment,
    choose_runner,
    effective_settings,
    find_func,
)
from devhost.stack_services import (
    DEFAULT_AZURITE_PORTS,
    ENGINES,
    file_settings,
    owned_settings,
    prepare_storage,
    say,
    start_app,
    start_services,
)

STATE_FILE = "stack.json"


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


# --- run --------------------------------------------------------------------------------


def command_run(
    root: Path, *, run_dir: Path, port: int, engine: str, free_ports: bool, instances: int = 1
) -> int:
    """Start everything and keep running until Ctrl+C or the app exits."""
    if stack_connection(run_dir) is not None:
        raise StackError(
            f"`make run` is already running for {root} (see {run_dir / STATE_FILE}); "
            "stop it with Ctrl+C first."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    phrases = root / "samples" / "phrases.txt"
    with ExitStack() as stack:
        services = start_services(
            stack,
            data_dir=run_dir / "azurite",
            log_dir=run_dir,
            phrases=phrases if phrases.exists() else None,
            default_ports=not free_ports,
            engine=engine,
        )
        state = run_dir / STATE_FILE
        azurite = services.azurite
        state.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "ports": [azurite.blob_port, azurite.queue_port, azurite.table_port],
                }
            )
        )
        stack.callback(state.unlink, missing_ok=True)
        env = child_environment(os.environ, owned_settings(services))
        settings = effective_settings(file_settings(root), env)
        prepare_storage(settings)
        runner = choose_runner(os.environ.get("RUNNER", "auto"), find_func())
        if instances > 1 and runner == "func":
            raise StackError(
                "--instances needs devhost (RUNNER=devhost): `func start` runs one instance"
            )
        app = start_app(
            stack, root=root, env=env, runner=runner, port=port, log=None, instances=instances
        )
        say(
            DropInstructions(
                connection_string=azurite.connection_string,
                input_container=settings["INPUT_CONTAINER"],
                output_container=settings["OUTPUT_CONTAINER"],
                error_container=settings["ERROR_CONTAINER"],
                default_ports=(azurite.blob_port, azurite.queue_port, azurite.table_port)
                == DEFAULT_AZURITE_PORTS,
                port=port,
            ).render()
        )
        app.process.wait()  # until the app exits, or Ctrl+C/SIGTERM unwinds the stack
        say(f"The app exited with code {app.process.returncode}; stopping the services.")
        return 1 if app.process.returncode else 0
    return 0


# --- upload -----------------------------------------------------------------------------


def stack_connection(run_dir: Path) -> str | None:
    """The connection string of a running `make run`, from its state file."""
    state = run_dir / STATE_FILE
    if not state.exists():
        return None
    try:
        data = json.loads(state.read_text())
        os.kill(int(data["pid"]), 0)
    except (ValueError, KeyError, OSError):
        return None
    blob, queue, table = (int(p) for p in data["ports"])
    return Azurite(Path(), blob, queue, table).connection_string


def command_upload(root: Path, *, run_dir: Path, file: Path, name: str | None) -> int:
    """Upload `file` into the input container of the running (or default) local storage."""
    if not file.is_file():
        raise StackError(f"{file} is not a file; pass a recording: make upload FILE=call.wav")
    if file.suffix.lower() not in AUDIO_SUFFIXES:
        say(f"Note: {file.name} is not .wav/.mp3; the app will report it as unsupported.")
    values = {**file_settings(root), **os.environ}
    connection = (
        stack_connection(run_dir)
        or values.get("AzureWebJobsStorage")
        or ("UseDevelopmentStorage=true")
    )
    container = values.get("INPUT_CONTAINER") or "audio-input"
    service = BlobServiceClient.from_connection_string(
        expand_connection_string(connection), retry_total=0, connection_timeout=5
    )
    blob_name = name or file.name
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    try:
        with contextlib.suppress(ResourceExistsError):
            service.create_container(container)
        with file.open("rb") as data:
            service.get_blob_client(container, blob_name).upload_blob(
                data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
            )
    except ServiceRequestError as exc:
        raise StackError(
            f"cannot reach the blob storage at {service.url}: is `make run` running? "
            "Start it first (or set AzureWebJobsStorage to your storage)."
        ) from exc
    say(f"Uploaded {file} to {container}/{blob_name} ({file.stat().st_size} bytes).")
    say(
        f"Outputs will appear in '{values.get('OUTPUT_CONTAINER') or 'transcripts'}' "
        f"under {blob_name}/."
    )
    return 0


# --- CLI --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Sub-commands run, demo and upload."""
    parser = argparse.ArgumentParser(
        prog="python -m devhost.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the app's directory")
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="data and logs (default: <root>/.run)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start everything; Ctrl+C stops it")
    run.add_argument("--port", type=int, default=RUN_PORT)
    run.add_argument("--engine", choices=ENGINES, default="sphinx", help="Speech engine")
    run.add_argument(
        "--free-ports", action="store_true", help="Azurite on free ports, not 10000-10002"
    )
    run.add_argument(
        "--instances",
        type=int,
        default=1,
        help="devhost instances sharing the storage account (one Speech quota for all)",
    )
    demo = sub.add_parser("demo", help="transcribe the sample calls end to end")
    demo.add_argument("--port", type=int, default=0, help="HTTP port of the app (0: free)")
    demo.add_argument("--samples", type=Path, default=None, help="default: <root>/samples")
    demo.add_argument("--timeout", type=float, default=240.0, help="seconds to wait")
    demo.add_argument("--engine", choices=ENGINES, default="sphinx", help="Speech engine")
    upload = sub.add_parser("upload", help="upload a recording into the input container")
    upload.add_argument("file", type=Path)
    upload.add_argument("--name", default=None, help="blob name (default: the file name)")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    # SIGTERM unwinds like Ctrl+C, so the ExitStacks stop every child process.
    # SIGINT too: a shell may start us with SIGINT ignored (background jobs).
    previous = {
        sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    root = args.root.resolve()
    run_dir = (args.run_dir or root / ".run").resolve()
    try:
        with _interruptible():
            if args.command == "run":
                return command_run(
                    root,
                    run_dir=run_dir,
                    port=args.port,
                    engine=args.engine,
                    free_ports=args.free_ports,
                    instances=args.instances,
                )
            if args.command == "demo":
                return command_demo(
                    root,
                    samples_dir=(args.samples or root / "samples").resolve(),
                    port=args.port,
                    timeout=args.timeout,
                    engine=args.engine,
                    run_dir=run_dir / "demo",
                )
            return command_upload(root, run_dir=run_dir, file=args.file, name=args.name)
    except KeyboardInterrupt:
        say("\nStopped; everything started here has been shut down.")
        return 130
    except (StackError, ServiceError, LocalSettingsError) as exc:
        say(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
