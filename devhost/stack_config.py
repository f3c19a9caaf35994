"""Pure parts of `make run` / `make demo`: the app's settings, the runner, the instructions."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass

# What the stack owns: these always point at the services it started.
OWNED = ("AzureWebJobsStorage", "SPEECH_ENDPOINT", "SPEECH_KEY", "SPEECH_MODEL")
# Fast local defaults; an exported variable still wins.
LOCAL_DEFAULTS = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "POLL_SCHEDULE": "*/5 * * * * *",
    "POLL_MIN_INTERVAL_SECONDS": "0",
    "PYTHONUNBUFFERED": "1",
}
DEFAULT_NAMES = {
    "INPUT_CONTAINER": "audio-input",
    "OUTPUT_CONTAINER": "transcripts",
    "ERROR_CONTAINER": "transcription-errors",
}
RUNNERS = ("auto", "func", "devhost")
RUN_PORT = 7071  # the app's HTTP port under `make run` (as `func start`'s default)


def status_page_url(port: int = RUN_PORT) -> str:
    """The operator status page of the app served on `port` (`shared.ops`)."""
    return f"http://localhost:{port}/api/status"


class StackError(RuntimeError):
    """The local stack cannot start or run; the message says what to do."""


def child_environment(
    environ: Mapping[str, str],
    owned: Mapping[str, str],
) -> dict[str, str]:
    """The app process's environment: ours, local defaults (unless exported), owned values.

    The app then loads local.settings.json for everything not set here, as `func start` does.
    """
    env = dict(environ)
    for name, value in LOCAL_DEFAULTS.items():
        env.setdefault(name, value)
    env.update(owned)
    return env


def effective_settings(
    file_values: Mapping[str, str], child_env: Mapping[str, str]
) -> dict[str, str]:
    """The settings the app will see: the environment wins over local.settings.json."""
    return {**DEFAULT_NAMES, **file_values, **child_env}


def choose_runner(requested: str, func_path: str | None) -> str:
    """`func` or `devhost`: RUNNER=func|devhost, or auto (func when it is on PATH)."""
    requested = (requested or "auto").strip().lower()
    if requested not in RUNNERS:
        raise StackError(f"RUNNER={requested!r} is not one of {', '.join(RUNNERS)}.")
    if requested == "func" and func_path is None:
        raise StackError(
            "RUNNER=func but Azure Functions Core Tools (`func`) is not on PATH. Install "
            "Core Tools, or unset RUNNER to use devhost."
        )
    if requested == "auto":
        return "func" if func_path is not None else "devhost"
    return requested


def find_func() -> str | None:
    """The Core Tools executable on PATH, if any."""
    return shutil.which("func")


@dataclass(frozen=True)
class DropInstructions:
    """What `make run` prints so the user can drop recordings in."""

    connection_string: str
    input_container: str
    output_container: str
    error_container: str
    default_ports: bool
    port: int = RUN_PORT

    def render(self) -> str:
        """The text shown after start-up."""
        explorer = (
            "Azure Storage Explorer: Emulator & Attached > Storage Accounts > "
            "(Emulator - Default Ports) > Blob Containers"
            if self.default_ports
            else "Azure Storage Explorer: Connect > Storage account > Connection string, "
            "and paste the connection string below"
        )
        return "\n".join(
            [
                "",
                "Ready. Drop recordings (.wav, .mp3, .flac, .ogg, .opus) into the blob container "
                f"'{self.input_container}':",
                "  - make upload FILE=path/to/call.wav",
                f'  - az storage blob upload --connection-string "$CONN" '
                f"-c {self.input_container} -f call.wav -n call.wav",
                f"  - {explorer}",
                f"Transcripts appear in '{self.output_container}' under <recording name>/ "
                "(transcript.txt, transcript.json, channel_N.json, subtitles); "
                f"failures as <recording name>.json in '{self.error_container}'.",
                f"CONN (Azurite's public development account): {self.connection_string}",
                f"Status page (every job, failures with a retry button, 24 h charts): "
                f"{status_page_url(self.port)}",
                "Press Ctrl+C to stop everything.",
                "",
            ]
        )
