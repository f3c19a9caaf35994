"""One Speech quota across processes: limiters in separate processes share one Azurite table.

Each worker (`bench.quota_worker`) is a process of its own, as an instance of the app is;
they start together on a file appearing, so they compete for the same windows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient

from devhost.services import PROJECT_ROOT, Azurite
from shared.app_rate_limit import TableRateLimiter
from shared.errors import SpeechThrottledError
from shared.rate_limit import CallPurpose, RateLimit, RateLimitedError
from shared.speech_client import SpeechClient
from tests.conftest import EmulatorFactory

LIMIT = RateLimit(12, 2.0)
ENDPOINT = "http://127.0.0.1:1/quota-test"


def max_in_window(times: list[float], per_seconds: float) -> int:
    """The most calls in any window of `per_seconds` (the Speech service's own count)."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(ordered):
        while ordered[first] <= t - per_seconds:
            first += 1
        best = max(best, last - first + 1)
    return best


def test_max_in_window_counts_the_busiest_window() -> None:
    assert max_in_window([0.0, 0.5, 1.0, 2.6, 2.7], 2.0) == 3
    assert max_in_window([0.0, 2.0, 4.0], 2.0) == 1


@pytest.fixture
def table_name(azurite: Azurite) -> Iterator[str]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = f"quota{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        service.delete_table(name)


class Worker:
    def __init__(self, azurite: Azurite, table: str, go: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.quota_worker",
                "--table",
                table,
                "--endpoint",
                ENDPOINT,
                "--limit",
                str(LIMIT),
                "--go",
                str(go),
                *args,
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, "QUOTA_CONNECTION": azurite.connection_string},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def result(self) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=120)
        assert self.process.returncode == 0
        return dict(json.loads(out.strip().splitlines()[-1]))


def test_three_processes_never_exceed_the_budget_together(
    azurite: Azurite, table_name: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    workers = [Worker(azurite, table_name, go, "--grants", "20") for _ in range(3)]
    go.touch()
    results = [w.result() for w in workers]
    grants = [t for r in results for t in r["grants"]]
    assert len(grants) == 60  # five windows' worth: the workers had to wait for each other
    assert max_in_window(grants, LIMIT.per_seconds) <= LIMIT.calls
    # They shared one budget: 60 grants at 12 per window took at least four more windows
    # (three independent budgets would have taken 20 each at once, then 8 more).
    assert max(grants) - min(grants) >= 4 * LIMIT.per_seconds
    assert not any(r["fallback"] for r in results)


def test_a_pause_in_one_process_stops_the_others(
    azurite: Azurite, table_name: str, tmp_path: Path
) -> None:
    table = TableClient.from_connection_string(azurite.connection_string, table_name=table_name)
    here = TableRateLimiter(table, ENDPOINT, LIMIT)
    assert here.try_acquire(CallPurpose.STATUS) == 0.0  # a cached copy from before the 429
    go = tmp_path / "go"
    go.touch()
    before = time.time()
    Worker(azurite, table_name, go, "--pause", "30").result()
    delay = here.try_acquire(CallPurpose.STATUS)
    assert 30.0 - (time.time() - before) - 1.0 < delay <= 30.0
    # And a new process sees it too.
    other = TableRateLimiter(table, ENDPOINT, LIMIT)
    assert other.wait_estimate(CallPurpose.STATUS) == pytest.approx(delay, abs=1.0)


def test_a_429_seen_by_one_instance_pauses_the_other(
    azurite: Azurite, table_name: str, speech_emulator_factory: EmulatorFactory
) -> None:
    """Two Speech clients, each with its own limiter on one table (two instances); the
    emulator allows one call per 30 s, so the second call of the first client draws a 429."""
    emulator = speech_emulator_factory("--engine", "scripted", "--rate-limit", "1/30")
    table = TableClient.from_connection_string(azurite.connection_string, table_name=table_name)
    limit = RateLimit(50, 10.0)  # far above the service's: only the 429 can stop the other

    def instance() -> tuple[SpeechClient, TableRateLimiter]:
        limiter = TableRateLimiter(table, emulator.endpoint, limit)
        # Waits of more than 5 s are not slept on: the caller is told to defer.
        client = SpeechClient(
            emulator.endpoint, key=emulator.key, limiter=limiter, max_attempts=1, max_retry_wait=5.0
        )
        return client, limiter

    (first, _), (second, second_limiter) = instance(), instance()
    assert second_limiter.wait_estimate(CallPurpose.STATUS) == 0.0
    first.transcription_locales()
    with pytest.raises(SpeechThrottledError) as throttled:
        first.transcription_locales()
    retry_after = throttled.value.retry_after
    assert retry_after is not None
    assert retry_after > 5.0
    # The other instance sent nothing and got no 429, yet it waits out the same pause.
    assert second_limiter.wait_estimate(CallPurpose.STATUS) == pytest.approx(retry_after, abs=2.0)
    with pytest.raises(RateLimitedError):
        second.transcription_locales()  # refused by its limiter: nothing sent
    assert second.request_count == 0
