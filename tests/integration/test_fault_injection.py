"""Faults injected into the Speech emulator while a batch runs: every input accounted for once.

Complements test_pipeline_faults.py (single throttled/failed/vanished/timed-out jobs, lost
completion) with whole batches under: a sustained rate limit, a mix of 5xx answers + failed
+ vanishing jobs, and answers slower than the client's timeout (the POST's outcome unknown).

The app's clock runs 60x faster than real time here, so its one-minute deferrals and
ten-minute leases pass in seconds; the emulator's rate-limit window is real time. Completion
messages are delivered like the host does it: a failed run puts the message back, visible
again a few seconds later, and a fifth failed run of one message (the host's poison
threshold) fails the test.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from devhost.services import Azurite, SpeechEmulator, wait_for
from shared.retry import set_testing
from shared.runtime import runtime_for, utc_now
from shared.settings import get_settings
from tests.conftest import EmulatorFactory
from tests.integration.harness import (
    Pipeline,
    env_for,
    import_function_app,
    mono_call,
    patched_env,
    stereo_call,
)

pytestmark = pytest.mark.integration

TERMINAL = ("done", "failed", "rejected")
SPEEDUP = 60.0
RETRY_DELAY_S = 3


class FastClock:
    """App time that runs `SPEEDUP` times faster than real time."""

    def __init__(self) -> None:
        self._start_real = time.monotonic()
        self._start = utc_now()

    def __call__(self) -> datetime:
        elapsed = time.monotonic() - self._start_real
        return self._start + timedelta(seconds=elapsed * SPEEDUP)


PipelineFactory = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory
) -> Iterator[PipelineFactory]:
    """A pipeline against an emulator of its own started with `args`, app clock 60x fast."""
    made: list[tuple[Pipeline, Any, Any]] = []

    def make(*args: str, **settings: str) -> Pipeline:
        emulator: SpeechEmulator = speech_emulator_factory("--engine", "scripted", *args)
        env = {**env_for(azurite, emulator, "fi"), **settings}
        patch = patched_env(env)
        patch.__enter__()
        pipe = Pipeline(env=env, azurite=azurite, emulator=emulator, module=import_function_app())
        rt = runtime_for(get_settings())
        made.append((pipe, patch, rt.clock))
        rt.clock = FastClock()
        return pipe

    with set_testing(True, attempts=2, cap=True):
        yield make
    for pipe, patch, clock in made:
        runtime_for(get_settings()).clock = clock
        pipe.close()
        patch.__exit__(None, None, None)


def _deliver(pipeline: Pipeline, tries: Counter[str]) -> None:
    """Run every queued completion as the host would; a failure puts the message back."""
    for message in pipeline.receive():
        key = json.loads(message.get_body())["job_key"]
        try:
            pipeline.complete(message)
        except Exception:  # the host logs it and retries the message
            tries[key] += 1
            assert tries[key] < 5, f"{key}: would have gone to the poison queue"
            # Visible again a little later, as after the host's visibilityTimeout (30 s there).
            body = base64.b64encode(message.get_body()).decode()
            pipeline.queue.send_message(body, visibility_timeout=RETRY_DELAY_S)


def _submit_all(pipeline: Pipeline, blobs: list[Any]) -> None:
    """The blob trigger, 8 at a time (host.json maxDegreeOfParallelism)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(pipeline.submit, blobs))  # a trigger run that raises fails the test


def _run_to_the_end(pipeline: Pipeline, count: int, timeout: float) -> list[Any]:
    tries: Counter[str] = Counter()

    def settled() -> list[Any] | None:
        pipeline.poll()
        _deliver(pipeline, tries)
        rows = pipeline.records()
        return rows if len(rows) == count and all(r["State"] in TERMINAL for r in rows) else None

    return wait_for(settled, timeout=timeout, interval=0.05, what=f"{count} jobs to end")


def _accounted_once(pipeline: Pipeline, names: list[str], rows: list[Any]) -> dict[str, str]:
    """Each input: one job, and exactly one outcome (outputs xor error report)."""
    assert sorted(r["BlobName"] for r in rows) == sorted(names)
    outputs = {o.rsplit("/", 1)[0] for o in pipeline.outputs() if o.endswith("/channel_0.json")}
    reports = {e.removesuffix(".json") for e in pipeline.errors()}
    states = {}
    for row in rows:
        name = row["BlobName"]
        states[name] = row["State"]
        assert (name in outputs) != (name in reports), name
        assert (name in outputs) == (row["State"] == "done"), (name, row["State"])
    stats = pipeline.stats()
    assert stats["transcriptions"]["live"] == 0  # no orphan left on the service
    per_key = Counter(j["displayName"] for j in stats["jobs"].values())
    max_attempts = int(pipeline.env.get("MAX_JOB_ATTEMPTS", "3"))
    for row in rows:
        assert per_key[row["RowKey"]] <= max(row.get("Attempts", 0), 1) <= max_attempts, row
    return states


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
    _submit_all(pipeline, blobs)
    throttled = [r for r in pipeline.records() if r["State"] == "deferred"]
    assert len(throttled) >= 1  # the limit really bit: deferred, none failed
    assert {r["ErrorCode"] for r in throttled} == {"Throttled"}

    rows = _run_to_the_end(pipeline, len(names), timeout=150)
    states = _accounted_once(pipeline, names, rows)
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
    _submit_all(pipeline, blobs)
    rows = _run_to_the_end(pipeline, len(names), timeout=90)
    states = _accounted_once(pipeline, names, rows)
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
    _submit_all(pipeline, blobs)
    rows = pipeline.records()
    assert {r["State"] for r in rows} == {"deferred"}  # every POST timed out ...
    assert all(r["NeedsLookup"] for r in rows)  # ... and may have created a job
    pipeline.configure(latency=0.1)  # still slow, but within the timeout
    rows = _run_to_the_end(pipeline, len(names), timeout=60)
    states = _accounted_once(pipeline, names, rows)
    assert set(states.values()) == {"done"}
    per_key = Counter(j["displayName"] for j in pipeline.stats()["jobs"].values())
    assert set(per_key.values()) == {1}  # one service job per recording
    lookups = pipeline.stats()["requests"]["GET /speechtotext/transcriptions"]
    assert sum(lookups.values()) >= len(names)  # each looked for an unseen job first
