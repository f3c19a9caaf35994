"""`make bench N=1000`: the whole pipeline on N synthetic recordings, measured.

For each mode (``poll``: the timer finds finished jobs; ``webhook``: the Speech service
calls the app back, polling stays as the safety net) the benchmark starts fresh services
(`bench.stack`), uploads N recordings concurrently, waits until every one has its
``channel_0.json`` (or an error report) and prints one JSON line:

* ``overhead_s``: service finished (the emulator's per-job ``finished``; the job's
  displayName is the app's job key, computed from the blob's name and ETag) → the app's
  upload of ``channel_0.json`` returned (timed inside the app process by the storage
  counter; a blob's Creation-Time has only one-second resolution).
* ``speech_requests_per_file``: Speech API calls from the emulator's stats, taken as the
  difference of snapshots around the run (the web hook registration is outside it). The
  emulator counts neither its admin routes nor ``contentUrl`` downloads as Speech calls;
  downloads are reported as ``content_downloads_per_file``.
* ``storage_requests_per_file``: every HTTP request of the app process's Azure Storage
  SDKs, counted at the transport (`bench.storage_counter`), split into ``app`` (the
  functions' code) and ``host`` (devhost's triggers: scans, receipts, queue polling).
* ``peak_rss_mb``: the app process and its children, sampled with psutil.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from bench import metrics
from bench.recordings import synthetic_call
from bench.rss import PeakRss
from bench.stack import BenchError, Stack, StackOptions, register_webhook, running_stack
from devhost.services import PROJECT_ROOT
from shared.jobs import job_key
from shared.output_names import error_report_name, output_name

MODES = ("poll", "webhook")
# The output container is listed at most this share of the time while the app's tally says
# work is left (1,000 recordings: every few seconds; 10,000: about every 30 s).
LISTING_DUTY = 0.1


@dataclass(frozen=True)
class BenchConfig:
    """Everything one benchmark invocation needs."""

    files: int
    processing_time_s: float = 20.0
    rate_limit: str = "100/10"
    poll_schedule: str = "*/10 * * * * *"
    webhook_poll_schedule: str = "0 * * * * *"
    poll_min_interval_s: float = 5.0
    timeout_s: float | None = None
    upload_workers: int = 16
    upload_rate: float | None = None  # files per second; None: all at once
    blob_scan_interval_s: float = 1.0  # devhost --blob-scan-interval
    batch_max_files: int | None = None  # BATCH_MAX_FILES; None: the app's default
    batch_window_s: float | None = None  # BATCH_WINDOW_SECONDS; None: the app's default
    check_every_s: float = 2.0
    webhook_path: str = "/api/speech-webhook"
    modes: tuple[str, ...] = MODES
    out_dir: Path = PROJECT_ROOT / ".bench"

    @property
    def deadline_s(self) -> float:
        """How long a run may take: generous for the rate limit (about 3 calls a file)."""
        if self.timeout_s is not None:
            return self.timeout_s
        arrival = self.files / self.upload_rate if self.upload_rate else 0.0
        return 180.0 + self.processing_time_s + 1.2 * self.files + arrival


def progress(message: str) -> None:
    """A progress line on stderr (stdout is kept for the JSON results)."""
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class Uploaded:
    """What the benchmark knows about one uploaded recording."""

    name: str
    key: str


def upload_all(stack: Stack, files: int, workers: int, rate: float | None = None) -> list[Uploaded]:
    """Generate and upload `files` recordings concurrently, all at once or `rate` a second
    (a steady arrival instead of a burst); returns names and job keys."""
    service = BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])
    container_name = stack.settings["INPUT_CONTAINER"]
    container = service.get_container_client(container_name)
    start = time.monotonic()
    pacer = threading.Event()  # never set: its wait() holds an upload until its slot

    def one(index: int) -> Uploaded:
        if rate:
            pacer.wait(max(0.0, start + index / rate - time.monotonic()))
        recording = synthetic_call(index)
        result = container.get_blob_client(recording.name).upload_blob(
            recording.data, metadata=recording.metadata, overwrite=True
        )
        return Uploaded(recording.name, job_key(container_name, recording.name, result["etag"]))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload") as pool:
        return list(pool.map(one, range(files)))


@dataclass
class Progress:
    """Which recordings have their transcript or error report, and when we saw them."""

    done: dict[str, float]
    failed: dict[str, float]


def check_outputs(
    stack: Stack, names: dict[str, str], errors: dict[str, str], *, outputs: bool = True
) -> Progress:
    """List the error container (and, with `outputs`, the output container); map what is
    there back to input names."""
    service = BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])
    now = time.time()
    done: dict[str, float] = {}
    if outputs:
        container = service.get_container_client(stack.settings["OUTPUT_CONTAINER"])
        done = {names[b]: now for b in container.list_blob_names() if b in names}
    reports = service.get_container_client(stack.settings["ERROR_CONTAINER"])
    failed = {errors[b]: now for b in reports.list_blob_names() if b in errors}
    return Progress(done, failed)


def reported_written(stack: Stack, names: dict[str, str]) -> dict[str, float]:
    """Input name -> when the app process says it wrote its ``channel_0.json``."""
    written = stack.storage_counts().get("channel_0_written", {})
    return {names[b]: float(at) for b, at in written.items() if b in names}


def wait_for_outputs(stack: Stack, uploads: list[Uploaded], config: BenchConfig) -> Progress:
    """Wait until every recording is done or the deadline passes.

    Progress comes from the app's own tally of transcripts written (cheap) and a listing of
    the error container; the output container (seven blobs per recording: listing it every
    few seconds would load Azurite more than the app does on a large run) is listed at most
    `LISTING_DUTY` of the time, and whenever the tally says all are done. The tally covers one
    app process; only what a listing showed counts as done.
    """
    names = {output_name(u.name, "channel_0.json"): u.name for u in uploads}
    errors = {error_report_name(u.name): u.name for u in uploads}
    seen = Progress({}, {})
    deadline = time.monotonic() + config.deadline_s
    started = time.monotonic()
    next_listing = started
    tick = threading.Event()  # never set: its wait() paces the checks without a bare sleep
    failed_now: dict[str, float] = {}
    while True:
        claimed = reported_written(stack, names)
        try:
            failed_now = check_outputs(stack, names, errors, outputs=False).failed
            claimed_all = len(set(claimed) | set(failed_now)) >= len(uploads)
            if claimed_all or time.monotonic() >= next_listing:
                listed_at = time.monotonic()
                current = check_outputs(stack, names, errors)
                took = time.monotonic() - listed_at
                next_listing = listed_at + max(config.check_every_s, took / LISTING_DUTY)
                for name, at in current.done.items():
                    seen.done.setdefault(name, at)
        except AzureError as exc:
            # Azurite stalls now and then under a big run (its own housekeeping): the app
            # rides it out with retries, and so does the benchmark's watching.
            progress(f"checking the containers failed ({type(exc).__name__}); trying again")
        for name, at in failed_now.items():
            seen.failed.setdefault(name, at)
        finished = len(seen.done) + len(set(seen.failed) - set(seen.done))
        stats = stack.emulator_stats()
        by_status = metrics.status_counts(stats)
        progress(
            f"{time.monotonic() - started:6.1f} s: {max(len(claimed), len(seen.done))}/"
            f"{len(uploads)} transcribed, {len(seen.failed)} error reports; Speech calls "
            f"{stats.get('requestsTotal', 0)} (429: {by_status.get('429', 0)}), "
            f"live jobs {stats['transcriptions']['live']}"
        )
        if finished >= len(uploads):
            return seen
        if not stack.app.alive():
            raise BenchError(f"the app exited during the run; see {stack.app_log}")
        if time.monotonic() >= deadline:
            progress(f"deadline of {config.deadline_s:.0f} s passed; reporting what completed")
            final = check_outputs(stack, names, errors)
            for name, at in final.done.items():
                seen.done.setdefault(name, at)
            return seen
        tick.wait(config.check_every_s)


def run_mode(config: BenchConfig, mode: str, run_dir: Path) -> dict[str, Any]:
    """One measured run in `mode` (``poll`` or ``webhook``); returns its result object."""
    schedule = config.poll_schedule if mode == "poll" else config.webhook_poll_schedule
    batching: dict[str, str] = {}
    if config.batch_max_files is not None:
        batching["BATCH_MAX_FILES"] = str(config.batch_max_files)
    if config.batch_window_s is not None:
        batching["BATCH_WINDOW_SECONDS"] = f"{config.batch_window_s:g}"
    options = StackOptions(
        processing_time_s=config.processing_time_s,
        rate_limit=config.rate_limit,
        poll_schedule=schedule,
        poll_min_interval_s=config.poll_min_interval_s,
        blob_scan_interval_s=config.blob_scan_interval_s,
        extra_settings=batching,
    )
    progress(f"{mode}: starting Azurite, the Speech emulator and the app in {run_dir}")
    with running_stack(run_dir, options) as stack, PeakRss(stack.app.pid) as rss:
        if mode == "webhook":
            register_webhook(stack, config.webhook_path)
            progress(f"webhook: registered {stack.app_url}{config.webhook_path}")
        before = stack.emulator_stats()
        pace = f" at {config.upload_rate:g}/s" if config.upload_rate else ""
        progress(f"{mode}: uploading {config.files} recordings{pace}")
        started = time.time()
        uploads = upload_all(stack, config.files, config.upload_workers, config.upload_rate)
        progress(f"{mode}: uploaded {len(uploads)} in {time.time() - started:.1f} s")
        seen = wait_for_outputs(stack, uploads, config)
        observed_end = time.time()
        after = stack.emulator_stats()
        stack.stop_app()
        peak = rss.overall_mb
        batch_of = stack.batch_keys()
    counts = stack.storage_counts()
    log_lines = stack.app_log.read_text(encoding="utf-8", errors="replace").splitlines()
    # Kept for profiling: per-job timelines and counters, beside the app's log.
    (run_dir / "emulator-stats.json").write_text(json.dumps(after), encoding="utf-8")
    (run_dir / "uploads.json").write_text(
        json.dumps({u.name: u.key for u in uploads}), encoding="utf-8"
    )
    (run_dir / "batches.json").write_text(json.dumps(batch_of), encoding="utf-8")
    return build_result(
        mode=mode,
        config=config,
        uploads=uploads,
        seen=seen,
        before=before,
        after=after,
        counts=counts,
        log_lines=log_lines,
        started=started,
        observed_end=observed_end,
        peak_rss_mb=peak,
        schedule=schedule,
        batch_of=batch_of,
    )


def build_result(
    *,
    mode: str,
    config: BenchConfig,
    uploads: list[Uploaded],
    seen: Progress,
    before: dict[str, Any],
    after: dict[str, Any],
    counts: dict[str, Any],
    log_lines: list[str],
    started: float,
    observed_end: float,
    peak_rss_mb: float,
    schedule: str,
    batch_of: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The run's JSON object (pure: everything measured is passed in)."""
    files = len(uploads)
    completed = sum(1 for u in uploads if u.name in seen.done)
    key_of = {u.name: u.key for u in uploads}
    written_by_name: dict[str, float] = {}
    for blob, at in counts.get("channel_0_written", {}).items():
        name = blob.removesuffix("/channel_0.json")
        if name in key_of:
            written_by_name[name] = at
    written = {key_of[n]: t for n, t in written_by_name.items()}
    batch_of = batch_of or {}
    finished = metrics.member_finished_times(after, key_of.values(), batch_of)
    overheads = metrics.overheads(finished, written)
    # The last transcript's write time when the app reported them all, else when we saw it.
    end = max(written.values()) if len(written) >= completed and written else observed_end
    wall = max(end - started, 1e-9)
    speech = metrics.minus(metrics.route_counts(after), metrics.route_counts(before))
    downloads = sum(after.get("contentDownloads", {}).values()) - sum(
        before.get("contentDownloads", {}).values()
    )
    statuses = metrics.minus(metrics.status_counts(after), metrics.status_counts(before))
    return {
        "mode": mode,
        "files": files,
        "completed": completed,
        "error_reports": len(seen.failed),
        "wall_s": round(wall, 1),
        "files_per_min": round(completed / wall * 60, 1),
        "overhead_s": metrics.summary(overheads),
        "overhead_samples": len(overheads),
        "speech_requests_per_file": {
            "total": round(sum(speech.values()) / max(files, 1), 3),
            "throttled_429": round(statuses.get("429", 0) / max(files, 1), 3),
            "by_route": metrics.per_file(speech, files),
            "by_status": statuses,
        },
        "content_downloads_per_file": round(downloads / max(files, 1), 3),
        "webhook_deliveries": after.get("webhookDeliveries", {}),
        "storage_requests_per_file": metrics.storage_breakdown(counts.get("requests", {}), files),
        "peak_rss_mb": peak_rss_mb,
        "function_runs": metrics.function_runs(log_lines),
        "settings": {
            "processing_time_s": config.processing_time_s,
            "rate_limit": config.rate_limit,
            "poll_schedule": schedule,
            "poll_min_interval_s": config.poll_min_interval_s,
            "upload_rate_per_s": config.upload_rate,
            "blob_scan_interval_s": config.blob_scan_interval_s,
            "batch_max_files": config.batch_max_files,
            "batch_window_s": config.batch_window_s,
        },
        "batches": len(set(batch_of.values())),
        "files_in_batches": len(batch_of),
    }


def run(config: BenchConfig) -> int:
    """Run every mode in order, printing one JSON line each; 0 when all completed."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    status = 0
    for mode in config.modes:
        run_dir = config.out_dir / f"{stamp}-{mode}"
        try:
            result = run_mode(config, mode, run_dir)
        except BenchError as exc:
            progress(f"{mode} run failed: {exc}")
            status = 1
            continue
        (run_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(json.dumps(result), flush=True)
        if result["completed"] < result["files"]:
            progress(
                f"{mode}: only {result['completed']} of {result['files']} completed; "
                f"logs in {run_dir}"
            )
            status = 1
    return status
