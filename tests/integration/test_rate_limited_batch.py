"""A batch under the service's rate limit, with the app's own limiter on: waits, not 429s.

The emulator allows 20 requests per 2 s (the S0 tier's rate, 5x compressed); the app is set
just under it (`SPEECH_RATE_LIMIT=18/2`). Every recording must end done with almost no
429s, and completion calls (list files, delete) must never be the ones throttled: they
have priority over submissions, which get only their share of the window.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import pytest

from shared.rate_limit import parse_rate_limit
from tests.integration.harness import (
    PipelineFactory,
    accounted_once,
    mono_call,
    run_to_the_end,
    submit_all,
)

pytestmark = pytest.mark.integration

APP_LIMIT = "18/2"
FILES_ROUTE = "GET /speechtotext/transcriptions/{id}/files"
DELETE_ROUTE = "DELETE /speechtotext/transcriptions/{id}"
# The service stamps a job when the POST arrives, the client counts a slot when it sends:
# windows this much shorter than the limiter's leave room for that jitter.
ARRIVAL_JITTER_S = 0.5


def most_in_any_window(moments: list[datetime], seconds: float) -> int:
    """The largest number of `moments` within any `seconds`-long window."""
    times = sorted(m.timestamp() for m in moments)
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_batch_under_the_rate_limit_draws_almost_no_429s(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline("--instant", "--rate-limit", "20/2", SPEECH_RATE_LIMIT=APP_LIMIT)
    names = [f"rl/{i:02}.wav" for i in range(60)]
    audio = mono_call()
    blobs = [pipeline.upload(n, audio, [[f"call {n}"]]) for n in names]
    started = time.monotonic()
    submit_all(pipeline, blobs)
    rows = run_to_the_end(pipeline, len(names), timeout=120)
    elapsed = time.monotonic() - started
    states = accounted_once(pipeline, names, rows)
    assert set(states.values()) == {"done"}

    stats = pipeline.stats()
    requests = stats["requests"]
    by_status: Counter[str] = Counter()
    for codes in requests.values():
        by_status.update({code: int(n) for code, n in codes.items()})
    total = sum(by_status.values())
    assert total >= 3 * len(names)  # submit + list files + delete each, at least
    assert by_status.get("429", 0) < 0.05 * total, requests

    # Completions go first: every job's files were listed and it was deleted, never a 429.
    for route in (FILES_ROUTE, DELETE_ROUTE):
        assert sum(requests.get(route, {}).values()) >= len(names), (route, requests)
        assert requests[route].get("429", 0) == 0, (route, requests[route])
    # ... because submissions only get their share of each window (the rest is left to
    # completions and polls): never more than the cap in any window, by arrival time.
    limit = parse_rate_limit(APP_LIMIT)
    assert limit is not None
    created = [datetime.fromisoformat(j["created"]) for j in stats["jobs"].values()]
    assert len(created) >= len(names)
    window = limit.per_seconds - ARRIVAL_JITTER_S
    assert most_in_any_window(created, window) <= limit.submission_cap, (
        f"more than {limit.submission_cap} submissions within {window} s"
    )
    # The quota (10 calls/s, 9 used) carries ~3 files/s: no long stall either.
    assert elapsed < 60, f"{elapsed:.1f} s"
