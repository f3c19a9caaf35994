"""`python -m bench.throttle_bench [--files 500] [--rate-limit 100/10]`: a bulk upload under
a sustained Speech rate limit, checked for "every input accounted for exactly once".

Starts Azurite, the Speech emulator (scripted engine, short jobs, the rate limit) and the app
under devhost (`bench.stack.running_stack`), uploads all files at once, waits for every
transcript, then checks: one job per upload and all `done`, no error report, no poison
message, no transcription left on the service, at most one service job per recording (a
throttled POST creates nothing). Prints one JSON object; exit status 0 when all checks hold.
Optional (minutes at the real tier's 100 requests / 10 s); the test suite runs a scaled-down
version (tests/integration/test_fault_injection.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from bench.pipeline_bench import BenchConfig, progress, upload_all, wait_for_outputs
from bench.stack import Stack, StackOptions, running_stack
from devhost.services import PROJECT_ROOT, wait_for


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.throttle_bench", description=__doc__)
    parser.add_argument("--files", type=int, default=500, help="recordings to upload")
    parser.add_argument("--rate-limit", default="100/10", help="emulator limit N/SECONDS")
    parser.add_argument("--processing-time", type=float, default=2.0, help="seconds per job")
    parser.add_argument("--poll-schedule", default="*/5 * * * * *", help="POLL_SCHEDULE")
    return parser.parse_args(argv)


def _poison_count(stack: Stack, queue: str) -> int:
    client = QueueClient.from_connection_string(stack.settings["AzureWebJobsStorage"], queue)
    try:
        return int(client.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:  # a queue never created holds nothing
        return 0


def _settle(stack: Stack) -> None:
    """Outputs are written before the job is marked done: wait for the last marks."""
    table = TableClient.from_connection_string(
        stack.settings["AzureWebJobsStorage"], stack.settings["JOBS_TABLE"]
    )

    def settled() -> bool:
        active = list(table.query_entities("PartitionKey eq 'job' and Active eq true"))
        return not active and stack.emulator_stats()["transcriptions"]["live"] == 0

    try:
        wait_for(settled, timeout=60, interval=1.0, what="the last jobs to be marked done")
    except TimeoutError as exc:
        progress(str(exc))


def check(stack: Stack, keys: dict[str, str]) -> dict[str, Any]:
    """The exactly-once checks over the job table, the emulator and the poison queues."""
    table = TableClient.from_connection_string(
        stack.settings["AzureWebJobsStorage"], stack.settings["JOBS_TABLE"]
    )
    rows = list(table.query_entities("PartitionKey eq 'job'"))
    stats = stack.emulator_stats()
    per_key = Counter(job["displayName"] for job in stats["jobs"].values())
    statuses = Counter(r["State"] for r in rows)
    return {
        "jobs": len(rows),
        "states": dict(statuses),
        "jobs_per_upload_ok": sorted(r["RowKey"] for r in rows) == sorted(keys.values()),
        "service_jobs_max_per_recording": max(per_key.values(), default=0),
        "service_jobs_left": stats["transcriptions"]["live"],
        "poison_messages": _poison_count(stack, f"{stack.settings['COMPLETION_QUEUE']}-poison")
        + _poison_count(stack, "webjobs-blobtrigger-poison"),
        "deferred_for_throttling": sum(
            1
            for line in stack.app_log.read_text(errors="replace").splitlines()
            if "submission deferred" in line and "(Throttled)" in line
        ),
        "speech_429": sum(codes.get("429", 0) for codes in stats["requests"].values()),
        "speech_requests": stats["requestsTotal"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run once, print the JSON result."""
    args = parse_args(argv)
    config = BenchConfig(files=args.files, rate_limit=args.rate_limit, modes=("poll",))
    options = StackOptions(
        processing_time_s=args.processing_time,
        rate_limit=args.rate_limit,
        poll_schedule=args.poll_schedule,
        poll_min_interval_s=5.0,
    )
    run_dir = PROJECT_ROOT / ".bench" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-throttle"
    with running_stack(run_dir, options) as stack:
        started = time.monotonic()
        uploads = upload_all(stack, args.files, workers=16)
        progress(f"uploaded {len(uploads)} in {time.monotonic() - started:.1f} s")
        seen = wait_for_outputs(stack, uploads, config)
        wall = time.monotonic() - started
        _settle(stack)
        result: dict[str, Any] = {
            "files": args.files,
            "rate_limit": args.rate_limit,
            "transcribed": len(seen.done),
            "error_reports": len(seen.failed),
            "wall_s": round(wall, 1),
            **check(stack, {u.name: u.key for u in uploads}),
        }
    ok = (
        result["transcribed"] == args.files
        and result["error_reports"] == 0
        and result["jobs_per_upload_ok"]
        and result["states"] == {"done": args.files}
        and result["service_jobs_max_per_recording"] == 1
        and result["service_jobs_left"] == 0
        and result["poison_messages"] == 0
    )
    result["exactly_once"] = ok
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
