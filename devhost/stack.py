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
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from azure.core.exceptions import ResourceExistsError, ServiceRequestError
from azure.storage.blob import BlobServiceClient, ContentSettings

from devhost.connections import expand_connection_string
from devhost.local_settings import LocalSettingsError, ensure_local_settings, read_values
from devhost.services import (
    PROJECT_ROOT,
    Azurite,
    ManagedProcess,
    ServiceError,
    SpeechEmulator,
    start_azurite,
    start_speech_emulator,
)
from devhost.stack_config import (
    DropInstructions,
    StackError,
    child_environment,
    choose_runner,
    effective_settings,
    find_func,
)
from devhost.transcript_match import expected_words, transcript_words, word_accuracy

AUDIO_SUFFIXES = (".wav", ".mp3")
DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)
STATE_FILE = "stack.json"
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


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
) -> ManagedProcess:
    """Start the app with `func start` or devhost as a child process (own process group)."""
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


# --- run --------------------------------------------------------------------------------


def command_run(root: Path, *, run_dir: Path, port: int, engine: str, free_ports: bool) -> int:
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
        app = start_app(stack, root=root, env=env, runner=runner, port=port, log=None)
        say(
            DropInstructions(
                connection_string=azurite.connection_string,
                input_container=settings["INPUT_CONTAINER"],
                output_container=settings["OUTPUT_CONTAINER"],
                error_container=settings["ERROR_CONTAINER"],
                default_ports=(azurite.blob_port, azurite.queue_port, azurite.table_port)
                == DEFAULT_AZURITE_PORTS,
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


# --- demo -------------------------------------------------------------------------------


@dataclass
class Sample:
    """One uploaded recording and what became of it."""

    path: Path
    status: str = "uploaded"
    outputs: tuple[str, ...] = ()
    transcript: str = ""
    error: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def find_samples(samples_dir: Path) -> list[Path]:
    """The demo recordings: samples/*.wav and *.mp3."""
    found = sorted(p for p in samples_dir.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not found:
        raise StackError(
            f"no .wav/.mp3 recordings in {samples_dir}; create them with `make samples`."
        )
    return found


def check_samples(samples: list[Sample], settings: Mapping[str, str]) -> None:
    """Update each sample's status from the output and error containers."""
    from shared.output_names import error_report_name, output_name  # noqa: PLC0415

    service = BlobServiceClient.from_connection_string(settings["AzureWebJobsStorage"])
    outputs = service.get_container_client(settings["OUTPUT_CONTAINER"])
    errors = service.get_container_client(settings["ERROR_CONTAINER"])
    for sample in samples:
        if sample.status in {"done", "failed"}:
            continue
        transcript = outputs.get_blob_client(output_name(sample.name, "transcript.txt"))
        if transcript.exists():
            prefix = output_name(sample.name, "x")[:-1]
            sample.outputs = tuple(b.name for b in outputs.list_blobs(name_starts_with=prefix))
            sample.transcript = transcript.download_blob().readall().decode("utf-8")
            sample.status = "done"
            continue
        report = errors.get_blob_client(error_report_name(sample.name))
        if report.exists():
            sample.error = report.download_blob().readall().decode("utf-8")
            sample.status = "failed"


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_samples(
    samples: list[Sample], settings: Mapping[str, str], app: ManagedProcess, timeout: float
) -> None:
    """Poll until every sample is done or failed, printing progress; stop at `timeout`."""
    start = time.monotonic()
    last_report = 0.0
    while True:
        before = {s.name: s.status for s in samples}
        check_samples(samples, settings)
        elapsed = time.monotonic() - start
        for sample in samples:
            if sample.status != before[sample.name]:
                say(f"  [{elapsed:5.1f} s] {sample.name}: {sample.status}")
        pending = [s.name for s in samples if s.status not in {"done", "failed"}]
        if not pending:
            return
        if not app.alive():
            raise StackError(f"the app exited (code {app.process.returncode}) during the demo")
        if elapsed > timeout:
            return
        if elapsed - last_report >= 5:
            last_report = elapsed
            done = len(samples) - len(pending)
            say(
                f"  [{elapsed:5.1f} s] {done}/{len(samples)} transcribed; waiting for "
                f"{', '.join(pending)}"
            )
        # Progress display cadence, not synchronisation: each pass re-checks the state.
        time.sleep(0.5)


def command_demo(
    root: Path, *, samples_dir: Path, port: int, timeout: float, engine: str, run_dir: Path
) -> int:
    """Transcribe the sample calls end to end, print them, stop everything."""
    paths = find_samples(samples_dir)
    phrases = samples_dir / "phrases.txt"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh storage: no receipts, no old outputs
    run_dir.mkdir(parents=True)
    with ExitStack() as stack:
        services = start_services(
            stack,
            data_dir=run_dir / "azurite",
            log_dir=run_dir,
            phrases=phrases if phrases.exists() else None,
            default_ports=False,
            engine=engine,
        )
        # A quicker poll for the one-shot demo (an exported POLL_SCHEDULE still wins).
        demo_environ = {"POLL_SCHEDULE": "*/2 * * * * *", **os.environ}
        env = child_environment(demo_environ, owned_settings(services))
        settings = effective_settings(file_settings(root), env)
        prepare_storage(settings)
        runner = choose_runner(os.environ.get("RUNNER", "auto"), find_func())
        log = stack.enter_context((run_dir / "app.log").open("w", encoding="utf-8"))
        app = start_app(stack, root=root, env=env, runner=runner, port=port, log=log)
        service = BlobServiceClient.from_connection_string(settings["AzureWebJobsStorage"])
        inputs = service.get_container_client(settings["INPUT_CONTAINER"])
        samples = [Sample(path) for path in paths]
        for sample in samples:
            with sample.path.open("rb") as data:
                inputs.upload_blob(sample.name, data, overwrite=True)
            say(f"Uploaded {sample.name} to {settings['INPUT_CONTAINER']}/{sample.name}")
        started = time.monotonic()
        say(f"Transcribing (app log: {run_dir / 'app.log'}) ...")
        wait_for_samples(samples, settings, app, timeout)
        say(f"Finished in {time.monotonic() - started:.1f} s.\n")
        expected = expected_words(samples_dir / "expected.json")
        for sample in samples:
            say(f"=== {sample.name}: {sample.status}")
            if sample.status == "done":
                say(sample.transcript.rstrip())
                if sample.name in expected:
                    accuracy = word_accuracy(
                        expected[sample.name], transcript_words(sample.transcript)
                    )
                    say(f"Words matching {samples_dir.name}/expected.json: {accuracy:.0%}")
                say("Outputs:")
                for name in sample.outputs:
                    say(f"  {settings['OUTPUT_CONTAINER']}/{name}")
            elif sample.status == "failed":
                say(f"Error report: {sample.error}")
            else:
                say(f"No transcripts within {timeout:.0f} s.")
            say()
        missing = [s.name for s in samples if s.status != "done"]
        if missing:
            say(f"FAILED: no transcripts for {', '.join(missing)}. App log tail:")
            say(tail(run_dir / "app.log"))
            return 1
        say(f"All {len(samples)} recordings transcribed.")
        return 0
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
    run.add_argument("--port", type=int, default=7071)
    run.add_argument("--engine", choices=ENGINES, default="sphinx", help="Speech engine")
    run.add_argument(
        "--free-ports", action="store_true", help="Azurite on free ports, not 10000-10002"
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
