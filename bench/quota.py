"""`python -m bench.quota [--instances 3] [--files 300] [--scope app]`: one Speech quota
across several app instances, measured from the Speech emulator's own count.

Starts Azurite, the Speech emulator (scripted engine, its 429 limit at ``--rate-limit``,
the real tier's 100/10 by default) and the app as ``--instances`` devhost processes on one
storage account (what ``python -m devhost --instances N`` runs, each instance with the
storage request counter of `bench.app_host`). The app's SPEECH_RATE_LIMIT is 90 % of the
service's, as by default. All recordings are uploaded at once (a burst), then it waits for
every transcript and prints, from ``GET /_emulator/stats``:

- the most Speech calls the service saw in any window of its length, against
  SPEECH_RATE_LIMIT (``within_limit``), and the 429s it answered;
- the storage operations the shared quota cost (requests to SPEECH_QUOTA_TABLE, all
  instances), per Speech call.

``--scope process`` runs the same burst with SPEECH_RATE_LIMIT_SCOPE=process (each
instance on its own window) for comparison. ``--limiter-only`` measures the limiter alone
instead: `bench.quota_worker` processes taking slots from one table as fast as the limit
allows, and prints storage calls per grant and the time a grant takes (p50/p95).

Progress goes to stderr; the last line of stdout is one JSON object. Exit status 0 when
the calls stayed within the limit and no 429 came back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.pipeline_bench import BenchConfig, progress, upload_all, wait_for_outputs
from bench.stack import (
    Stack,
    StackOptions,
    app_settings,
    free_port,
    launch_app,
    start_services,
    wait_ready,
    write_settings,
)
from devhost.services import (
    PROJECT_ROOT,
    ManagedProcess,
    start_azurite,
)
from shared.rate_limit import RateLimit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.quota",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--instances", type=int, default=3, help="app instances (3)")
    parser.add_argument("--files", type=int, default=300, help="recordings, uploaded at once")
    parser.add_argument("--rate-limit", default="100/10", help="the service's limit (100/10)")
    parser.add_argument("--processing-time", type=float, default=2.0, help="s per job (2)")
    parser.add_argument("--poll-schedule", default="*/5 * * * * *", help="POLL_SCHEDULE")
    parser.add_argument(
        "--scope", choices=("app", "process"), default="app", help="SPEECH_RATE_LIMIT_SCOPE"
    )
    parser.add_argument(
        "--limiter-only",
        action="store_true",
        help="measure the shared limiter alone (no app, no Speech)",
    )
    parser.add_argument(
        "--grants", type=int, default=200, help="--limiter-only: slots per instance (200)"
    )
    parser.add_argument(
        "--limiter-limit",
        default="100/1",
        help="--limiter-only: the limit they share (100/1: storage-bound, not limit-bound)",
    )
    args = parser.parse_args(argv)
    if args.instances < 1 or args.files < 1:
        parser.error("--instances and --files must be at least 1")
    return args


# --- the app as several instances --------------------------------------------------------


@dataclass
class Instance:
    app: ManagedProcess
    log: Path
    counts: Path


@contextlib.contextmanager
def running_instances(run_dir: Path, args: argparse.Namespace) -> Iterator[tuple[Stack, str]]:
    """Azurite, the emulator and `args.instances` app processes; the stack (of instance 0)
    and the name of the quota table."""
    run_dir.mkdir(parents=True, exist_ok=True)
    options = StackOptions(
        processing_time_s=args.processing_time,
        rate_limit=args.rate_limit,
        poll_schedule=args.poll_schedule,
        poll_min_interval_s=5.0,
    )
    with contextlib.ExitStack() as stack:
        azurite, emulator = start_services(stack, run_dir, args.processing_time, args.rate_limit)
        settings = app_settings(azurite, emulator, options, secret="")
        uid = uuid.uuid4().hex[:8]
        quota_table = f"benchquota{uid}"
        settings.update(
            {
                "SPEECH_RATE_LIMIT_SCOPE": args.scope,
                "SPEECH_QUOTA_TABLE": quota_table,
                "AzureFunctionsWebHost__hostid": f"bench-{uid}",
            }
        )
        settings_file = write_settings(run_dir, settings)
        instances: list[Instance] = []
        for index in range(args.instances):
            log = run_dir / f"app-{index}.log"
            counts = run_dir / f"storage-counts-{index}.json"
            app = launch_app(
                stack,
                settings_file,
                settings,
                name=f"app-{index}",
                port=free_port(),
                log=log,
                counts_file=counts,
                blob_scan_interval_s=1.0,
                extra_args=("--instance-index", str(index)),
            )
            instances.append(Instance(app, log, counts))
        for instance in instances:
            wait_ready(instance.app, instance.log, timeout=90.0)
        first = instances[0]
        yield (
            Stack(
                run_dir=run_dir,
                azurite=azurite,
                emulator=emulator,
                app=first.app,
                app_port=0,
                settings=settings,
                app_log=first.log,
                counts_file=first.counts,
                webhook_secret="",
            ),
            quota_table,
        )
        for instance in instances:  # SIGTERM: each writes its final storage counts
            instance.app.stop(timeout=60.0)


def quota_operations(run_dir: Path, table: str) -> int:
    """Requests to the quota table, summed over every instance's storage counts."""
    total = 0
    for counts in run_dir.glob("storage-counts-*.json"):
        requests = json.loads(counts.read_text(encoding="utf-8")).get("requests", {})
        total += sum(n for key, n in requests.items() if key.split(" ")[-1] == table)
    return total


def run_app(args: argparse.Namespace) -> dict[str, Any]:
    """The burst through `args.instances` app instances; the result object."""
    run_dir = PROJECT_ROOT / ".bench" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-quota-{args.scope}"
    config = BenchConfig(files=args.files, rate_limit=args.rate_limit, modes=("poll",))
    with running_instances(run_dir, args) as (stack, quota_table):
        started = time.monotonic()
        uploads = upload_all(stack, args.files, workers=16)
        progress(f"uploaded {len(uploads)} in {time.monotonic() - started:.1f} s")
        seen = wait_for_outputs(stack, uploads, config)
        wall = time.monotonic() - started
        stats = stack.emulator_stats()
        app_limit = stack.settings["SPEECH_RATE_LIMIT"]
    busiest = stats["max_calls_per_window"]
    limit = RateLimit.parse(app_limit)
    speech_calls = int(stats["requestsTotal"])
    quota_ops = quota_operations(run_dir, quota_table)
    too_many = sum(codes.get("429", 0) for codes in stats["requests"].values())
    return {
        "instances": args.instances,
        "scope": args.scope,
        "files": args.files,
        "transcribed": len(seen.done),
        "error_reports": len(seen.failed),
        "wall_s": round(wall, 1),
        "service_limit": args.rate_limit,
        "speech_rate_limit": app_limit,
        "window_s": busiest["window_s"],
        "max_calls_in_window": busiest["max"],
        "within_limit": busiest["max"] <= limit.calls,
        "speech_429": too_many,
        "speech_calls": speech_calls,
        "quota_table_ops": quota_ops,
        "quota_ops_per_speech_call": round(quota_ops / speech_calls, 2) if speech_calls else None,
        "run_dir": str(run_dir),
    }


# --- the limiter alone -------------------------------------------------------------------


def run_limiter(args: argparse.Namespace) -> dict[str, Any]:
    """`args.instances` worker processes share one table; storage calls and grant latency."""
    run_dir = PROJECT_ROOT / ".bench" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-quota-limiter"
    run_dir.mkdir(parents=True, exist_ok=True)
    azurite = start_azurite(run_dir / "azurite", log_path=run_dir / "azurite.log")
    try:
        go = run_dir / "go"
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.quota_worker",
                    "--table",
                    "benchquota",
                    "--endpoint",
                    "http://speech.invalid/bench",
                    "--limit",
                    args.limiter_limit,
                    "--grants",
                    str(args.grants),
                    "--go",
                    str(go),
                ],
                cwd=PROJECT_ROOT,
                env={**os.environ, "QUOTA_CONNECTION": azurite.connection_string},
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.instances)
        ]
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError("a quota worker did not start; run it by hand to see why")
        started = time.monotonic()
        go.touch()
        results = [
            json.loads(w.communicate(timeout=600)[0].strip().splitlines()[-1]) for w in workers
        ]
        wall = time.monotonic() - started
    finally:
        azurite.stop()
        shutil.rmtree(azurite.data_dir, ignore_errors=True)
    grants = sum(len(r["grants"]) for r in results)
    calls = sum(r["storage_calls"] for r in results)
    latencies = sorted(ms for r in results for ms in (x * 1000 for x in r["latencies"]))
    limit = RateLimit.parse(args.limiter_limit)
    times = sorted(t for r in results for t in r["grants"])
    return {
        "mode": "limiter-only",
        "instances": args.instances,
        "limit": args.limiter_limit,
        "grants": grants,
        "grants_per_s": round(grants / wall, 1),
        "storage_calls_per_grant": round(calls / grants, 2),
        "grant_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "grant_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1)
        if latencies
        else None,
        "max_grants_in_window": max_in_window(times, limit.per_seconds),
        "within_limit": max_in_window(times, limit.per_seconds) <= limit.calls,
    }


def max_in_window(times: list[float], per_seconds: float) -> int:
    """The most of `times` (sorted) in any window of `per_seconds`."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - per_seconds:
            first += 1
        best = max(best, last - first + 1)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run, print the summary (stderr) and the JSON result (stdout)."""
    args = parse_args(argv)
    if args.limiter_only:
        result = run_limiter(args)
        progress(
            f"{result['instances']} instances, {result['grants']} grants at {result['limit']}: "
            f"{result['storage_calls_per_grant']} storage calls per grant, grant "
            f"p50 {result['grant_ms_p50']} ms, p95 {result['grant_ms_p95']} ms"
        )
        print(json.dumps(result), flush=True)
        return 0 if result["within_limit"] else 1
    result = run_app(args)
    progress(
        f"{result['instances']} instances (scope {result['scope']}): max Speech calls in any "
        f"{result['window_s']:g} s window {result['max_calls_in_window']} vs "
        f"SPEECH_RATE_LIMIT {result['speech_rate_limit']} (service {result['service_limit']}); "
        f"429s {result['speech_429']}; {result['quota_ops_per_speech_call']} quota storage "
        f"operations per Speech call"
    )
    print(json.dumps(result), flush=True)
    ok = (
        result["within_limit"]
        and result["speech_429"] == 0
        and result["transcribed"] == result["files"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
