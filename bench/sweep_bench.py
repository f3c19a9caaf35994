"""`python -m bench.sweep_bench [--blobs 20000] [--missing 50]`: the sweep over a big container.

Starts an Azurite of its own, uploads `--blobs` tiny input blobs, records a job row for all
but `--missing` of them (Table batch transactions), then times one sweep run (grace 0,
nothing submitted: `max_submitted=0`, the missing ones are handed to the poller as deferred
records). Prints one JSON object: blobs examined, found missing, wall time and the rate,
so the cost of an hourly sweep over e.g. 100k recordings can be read off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from devhost.services import start_azurite
from shared import jobs
from shared.input_versions import header_etag
from shared.job_store import to_entity
from shared.runtime import Runtime
from shared.settings import Settings
from shared.storage import StorageClients
from shared.sweep import SweepLimits, run_sweep


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_bench", description=__doc__)
    parser.add_argument("--blobs", type=int, default=20_000)
    parser.add_argument("--missing", type=int, default=50)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fill a container and a job table, time one sweep, print the result."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        azurite = start_azurite(Path(tmp) / "data", log_path=Path(tmp) / "azurite.log")
        try:
            return _run(azurite.connection_string, args.blobs, args.missing)
        finally:
            azurite.close()


def _run(connection: str, count: int, missing: int) -> int:
    env = {
        "AzureWebJobsStorage": connection,
        "SPEECH_ENDPOINT": "http://127.0.0.1:9",  # never called: nothing is submitted
        "INPUT_CONTAINER": "sweep-in",
        "JOBS_TABLE": "sweepjobs",
    }
    settings = Settings.from_env(env)
    rt = Runtime(settings, StorageClients.from_setting(env, settings.storage_connection))
    rt.ensure_resources()
    container = BlobServiceClient.from_connection_string(connection).get_container_client(
        settings.input_container
    )
    started = time.monotonic()

    def upload(i: int) -> tuple[str, str]:
        name = f"calls/{i // 1000:03}/{i:06}.wav"
        blob = container.get_blob_client(name)
        result = blob.upload_blob(b"RIFF", overwrite=True)
        return name, str(result["etag"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        uploaded = list(pool.map(upload, range(count)))
    upload_s = time.monotonic() - started
    table = TableServiceClient.from_connection_string(connection).get_table_client(
        settings.jobs_table
    )
    now = datetime.now(UTC) - timedelta(hours=1)
    recorded = uploaded[missing:]
    for start in range(0, len(recorded), 100):
        batch = []
        for name, etag in recorded[start : start + 100]:
            record = jobs.new_job(
                container=settings.input_container,
                name=name,
                etag=header_etag(etag),
                size=4,
                now=now,
                timeout=timedelta(hours=30),
                lease=timedelta(0),
            )
            done = jobs.fail(record, now=now, error_code="x", error_message="x")
            batch.append(("create", to_entity(done)))
        table.submit_transaction(batch)
    sweep_started = time.monotonic()
    report = run_sweep(rt, SweepLimits(grace=timedelta(0), max_submitted=0))
    sweep_s = time.monotonic() - sweep_started
    result = {
        "blobs": count,
        "examined": report.examined,
        "missing_found": len(report.missing),
        "missing_expected": missing,
        "handed_to_poller": len(report.handed_to_poller),
        "finished_listing": report.finished_listing,
        "sweep_s": round(sweep_s, 2),
        "blobs_per_s": round(report.examined / max(sweep_s, 1e-9)),
        "setup_upload_s": round(upload_s, 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)
    return 0 if len(report.missing) == missing and report.finished_listing else 1


if __name__ == "__main__":
    sys.exit(main())
