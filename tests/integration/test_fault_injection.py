"""Faults injected into the Speech emulator while a batch runs: every input accounted for once.

Complements test_pipeline_faults.py (single throttled/failed/vanished/timed-out jobs, lost
completion) with whole batches under: a sustained rate limit, a mix of 5xx answers + failed
+ vanishing jobs, and answers slower than the client's timeout (the POST's outcome unknown).

The app's clock runs 60x faster than real time here (`make_pipeline`), so its one-minute
deferrals and ten-minute leases pass in seconds; the emulator's rate-limit window is real
time. Completion messages are delivered as the host does (`harness.run_to_the_end`).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.integration.harness import (
    PipelineFactory,
    accounted_once,
    mono_call,
    run_to_the_end,
    stereo_call,
    submit_all,
)

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_bulk_upload_under_a_sustained_rate_limit(make_pipeline: PipelineFactory) -> None:
    # 2x the real tier's 100 / 10 s keeps it near 30 s; bench/throttle_bench.py runs the real
    # tier with 500 files.
    # The app's own client-side limit is off: the service's 429s are what it must live with
    # (another client may share the resource's quota).
    pipeline = make_pipeline("--instant", "--rate-limit", "40/4", SPEECH_RATE_LIMIT="off")
    names = [f"bulk/{i:03}.wav" for i in range(150)]
    audio = mono_call()
    blobs = [pipeline.upload(n, audio, [[f"call {n}"]]) for n in names]
    started = time.monotonic()
    submit_all(pipeline, blobs)
    throttled = [r for r in pipeline.records() if r["State"] == "deferred"]
    assert len(throttled) >= 1  # the limit really bit: deferred, none failed
    assert {r["ErrorCode"] for r in throttled} == {"Throttled"}

    rows = run_to_the_end(pipeline, len(names), timeout=150)
    states = accounted_once(pipeline, names, rows)
    assert set(states.values()) == {"done"}
    per_key = Counter(j["displayName"] for j in pipeline.stats()["jobs"].values())
    assert set(per_key.values()) == {1}  # one service job per recording, never two
    requests = pipeline.stats()["requests"]
    assert requests["POST /speechtotext/transcriptions:submit"].get("429", 0) > 0
    print(f"150 files under 40 requests / 4 s: {time.monotonic() - started:.1f} s")


def test_batch_under_5xx_failed_and_vanishing_jobs(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(
        "--instant",
        "--seed",
        "11",
        "--error-rate",
        "0.2",
        "--fail-share",
        "0.25",
        "--fail-code",
        "ServiceUnavailable",
        "--vanish-share",
        "0.2",
        "--latency",
        "0.02",
    )
    names = [f"chaos/{i:02} call.wav" for i in range(24)]
    blobs = [
        pipeline.upload(n, stereo_call() if i % 2 else mono_call(), [["chaos"], ["reigns"]])
        for i, n in enumerate(names)
    ]
    submit_all(pipeline, blobs)
    rows = run_to_the_end(pipeline, len(names), timeout=90)
    states = accounted_once(pipeline, names, rows)
    assert "done" in states.values()
    for row in rows:
        if row["State"] == "failed":  # only transient failures here: out of attempts
            report = pipeline.error_report(f"{row['BlobName']}.json")
            assert report["reasonCode"] in ("ServiceUnavailable", "OutOfAttempts"), report
            assert row["Attempts"] == 3
    events = pipeline.stats()["transcriptions"]["events"]
    assert events.get("vanished", 0) > 0
    assert events.get("failed", 0) > 0


def test_answers_slower_than_the_client_timeout(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline("--instant", "--latency", "1.2", SPEECH_TIMEOUT_SECONDS="1")
    names = [f"slow/{i}.wav" for i in range(4)]
    blobs = [pipeline.upload(n, mono_call(), [["slow answer"]]) for n in names]
    submit_all(pipeline, blobs)
    rows = pipeline.records()
    assert {r["State"] for r in rows} == {"deferred"}  # every POST timed out ...
    assert all(r["NeedsLookup"] for r in rows)  # ... and may have created a job
    pipeline.configure(latency=0.1)  # still slow, but within the timeout
    rows = run_to_the_end(pipeline, len(names), timeout=60)
    states = accounted_once(pipeline, names, rows)
    assert set(states.values()) == {"done"}
    per_key = Counter(j["displayName"] for j in pipeline.stats()["jobs"].values())
    assert set(per_key.values()) == {1}  # one service job per recording
    lookups = pipeline.stats()["requests"]["GET /speechtotext/transcriptions"]
    assert sum(lookups.values()) >= len(names)  # each looked for an unseen job first
