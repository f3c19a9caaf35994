"""`python -m bench.azurite_scale`: how Azurite's cost per blob call grows with its blobs.

Why it exists: a 10,000-recording run holds some 90,000 blobs (the recordings, seven
products each, the host's receipts). Azurite 3.35 (the local stand-in, not the app) slowed
down in proportion, looking each blob up by scanning every blob of the account; 3.36+ looks
it up by name, which is why the project pins 3.37. This measures the per-call cost on a
fresh Azurite, so the pipeline benchmark's large-run numbers can be read correctly. Prints
one JSON line per step: blobs held, upload rate, median HEAD latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from azure.storage.blob import BlobServiceClient

from devhost.services import start_azurite


def main(argv: list[str] | None = None) -> int:
    """Fill a fresh Azurite step by step; print what each step cost."""
    parser = argparse.ArgumentParser(prog="python -m bench.azurite_scale", description=__doc__)
    parser.add_argument(
        "--steps",
        default="1000,5000,10000,20000,40000",
        help="blob counts to measure at (comma list, increasing)",
    )
    parser.add_argument("--workers", type=int, default=16, help="upload threads (16)")
    parser.add_argument("--heads", type=int, default=200, help="HEAD calls per step (200)")
    args = parser.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    azurite = start_azurite(None)
    try:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        container = service.get_container_client("azurite-scale")
        container.create_container()
        held = 0

        def upload(index: int) -> None:
            container.upload_blob(f"blobs/{index:07d}.json", b"{}")

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for target in steps:
                started = time.perf_counter()
                list(pool.map(upload, range(held, target)))
                rate = (target - held) / max(time.perf_counter() - started, 1e-9)
                held = target
                latencies = []
                for i in range(args.heads):
                    blob = container.get_blob_client(f"blobs/{(i * 7919) % held:07d}.json")
                    started = time.perf_counter()
                    blob.get_blob_properties()
                    latencies.append(time.perf_counter() - started)
                line = {
                    "blobs": held,
                    "uploads_per_s": round(rate),
                    "head_ms_median": round(statistics.median(latencies) * 1000, 1),
                }
                print(json.dumps(line), flush=True)
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
