"""`make demo`: transcribe the sample calls end to end, print them, stop everything."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from devhost.services import ManagedProcess
from devhost.stack_config import (
    StackError,
    child_environment,
    choose_runner,
    effective_settings,
    find_func,
    status_page_url,
)
from devhost.stack_services import (
    file_settings,
    owned_settings,
    prepare_storage,
    say,
    start_app,
    start_services,
)
from devhost.transcript_match import expected_words, transcript_words, word_accuracy

AUDIO_SUFFIXES = (".wav", ".mp3")


@dataclass
class Sample:
    """One uploaded recording and what became of it."""

    path: Path
    status: str = "uploaded"
    etag: str = ""
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
    """Update each sample's status from its job record, the outputs and the error report.

    A recording is done when the app marked its job `done`: that happens only after every
    output is written and the server-side job deleted, so the listing below is complete.
    """
    from azure.data.tables import TableClient  # noqa: PLC0415

    from shared.jobs import JobState, job_key  # noqa: PLC0415
    from shared.output_names import error_report_name, output_name  # noqa: PLC0415

    connection = settings["AzureWebJobsStorage"]
    service = BlobServiceClient.from_connection_string(connection)
    outputs = service.get_container_client(settings["OUTPUT_CONTAINER"])
    errors = service.get_container_client(settings["ERROR_CONTAINER"])
    jobs = TableClient.from_connection_string(
        connection, settings.get("JOBS_TABLE", "transcriptionjobs")
    )
    for sample in samples:
        if sample.status in {"done", "failed"}:
            continue
        key = job_key(settings["INPUT_CONTAINER"], sample.name, sample.etag)
        records = list(jobs.query_entities("RowKey eq @key", parameters={"key": key}))
        state = records[0].get("State") if records else None
        transcript = outputs.get_blob_client(output_name(sample.name, "transcript.txt"))
        if state == JobState.DONE and transcript.exists():
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
                uploaded = inputs.upload_blob(sample.name, data, overwrite=True)
            sample.etag = str(uploaded.get_blob_properties().etag)
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
        say(
            "Every job, its history and failures, with a retry button: run `make run` "
            f"and open {status_page_url()}"
        )
        return 0
    return 0
