"""`python -m bench --memory-check` (or `python -m bench.memory`): does a 1 GB recording cost
the app more memory than a 100 KB one?

One stack (polling mode, short processing time); one recording of each size is submitted in
turn and the app's peak RSS (process tree) is taken over each recording's whole life, from
upload to its ``channel_0.json``. The big file is a WAV header announcing ~1 GB of silence,
streamed to Azurite as 4 MiB blocks (`stage_block`), so the benchmark never holds it either.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobBlock, BlobServiceClient

from bench.pipeline_bench import progress
from bench.recordings import silent_wav_chunks
from bench.rss import MB, PeakRss, tree_rss
from bench.stack import BenchError, Stack, StackOptions, running_stack
from devhost.services import PROJECT_ROOT
from shared.output_names import error_report_name, output_name

SMALL_BYTES = 100_000
# Just under the service's 1 GB (2^30 bytes) input limit, which the emulator enforces too.
LARGE_BYTES = 1_000_000_000


@dataclass(frozen=True)
class MemoryConfig:
    """Sizes to try and how long each may take."""

    sizes: tuple[int, ...] = (SMALL_BYTES, LARGE_BYTES)
    processing_time_s: float = 3.0
    timeout_s: float = 600.0
    out_dir: Path = PROJECT_ROOT / ".bench"


def upload_streamed(stack: Stack, name: str, size: int) -> None:
    """Upload a silent WAV of `size` bytes block by block, with the scripted engine's text."""
    service = BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])
    blob = service.get_blob_client(stack.settings["INPUT_CONTAINER"], name)
    blocks: list[BlobBlock] = []
    for chunk in silent_wav_chunks(size):
        block_id = uuid.uuid4().hex
        blob.stage_block(block_id, chunk, length=len(chunk))
        blocks.append(BlobBlock(block_id=block_id))
    script = json.dumps([["memory check agent"], ["memory check customer"]])
    blob.commit_block_list(blocks, metadata={"transcript": script})


def wait_done(stack: Stack, name: str, timeout: float) -> str:
    """Wait for the recording's channel_0.json (``completed``) or error report (``failed``)."""
    service = BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])
    output = service.get_blob_client(
        stack.settings["OUTPUT_CONTAINER"], output_name(name, "channel_0.json")
    )
    report = service.get_blob_client(stack.settings["ERROR_CONTAINER"], error_report_name(name))
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: paces the checks
    while time.monotonic() < deadline:
        if output.exists():
            return "completed"
        if report.exists():
            return "failed"
        if not stack.app.alive():
            raise BenchError(f"the app exited during the memory check; see {stack.app_log}")
        tick.wait(0.5)
    return "timed out"


def run_memory_check(config: MemoryConfig) -> int:
    """Measure each size in turn; print one JSON line; 0 when every recording completed."""
    run_dir = config.out_dir / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-memory"
    options = StackOptions(
        processing_time_s=config.processing_time_s,
        rate_limit="100/10",
        poll_schedule="*/2 * * * * *",
        poll_min_interval_s=1.0,
    )
    results: list[dict[str, Any]] = []
    progress(f"memory check: starting the stack in {run_dir}")
    with running_stack(run_dir, options) as stack, PeakRss(stack.app.pid, interval=0.1) as rss:
        idle_mb = round(tree_rss(stack.app.pid) / MB, 1)
        for size in config.sizes:
            name = f"memory/recording-{size}.wav"
            rss.mark()
            started = time.monotonic()
            progress(f"memory check: uploading {size:,} bytes as {name}")
            upload_streamed(stack, name, size)
            outcome = wait_done(stack, name, config.timeout_s)
            results.append(
                {
                    "bytes": size,
                    "outcome": outcome,
                    "seconds": round(time.monotonic() - started, 1),
                    "peak_rss_mb": rss.peak_mb,
                }
            )
            progress(f"memory check: {name}: {outcome}, peak RSS {rss.peak_mb} MB")
    peaks = [r["peak_rss_mb"] for r in results]
    line = {
        "mode": "memory",
        "idle_rss_mb": idle_mb,
        "recordings": results,
        "peak_rss_mb": max(peaks),
        "large_minus_small_mb": round(peaks[-1] - peaks[0], 1),
    }
    (run_dir / "result.json").write_text(json.dumps(line, indent=2), encoding="utf-8")
    print(json.dumps(line), flush=True)
    return 0 if all(r["outcome"] == "completed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(run_memory_check(MemoryConfig()))
