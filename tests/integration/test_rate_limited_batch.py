"""A batch under the service's rate limit, with the app's own limiter on: waits, not 429s.

The emulator allows 20 requests per 2 s (the S0 tier's rate, 5x compressed); the app is set
just under it (`SPEECH_RATE_LIMIT=18/2`). Every recording must end done with almost no
429s, and completion calls (list files, delete) must never be the ones throttled: they
have priority over submissions.
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
    submit_all,
)

pytestmark = pytest.mark.integration

_COMPLETION_ROUTES = ("files", "DELETE")


def test_batch_under_the_rate_limit_draws_almost_no_429s(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline("--instant", "--rate-limit", "20/2", SPEECH_RATE_LIMIT="18/2")
    names = [f"rl/{i:02}.wav" for i in range(60)]
    audio = mono_call()
    blobs = [pipeline.upload(n, audio, [[f"call {n}"]]) for n in names]
    started = time.monotonic()
    submit_all(pipeline, blobs)
    rows = run_to_the_end(pipeline, len(names), timeout=120)
    elapsed = time.monotonic() - started
    states = accounted_once(pipeline, names, rows)
    assert set(states.values()) == {"done"}

    requests = pipeline.stats()["requests"]
    by_status: Counter[str] = Counter()
    for codes in requests.values():
        by_status.update({code: int(n) for code, n in codes.items()})
    total = sum(by_status.values())
    assert total >= 3 * len(names)  # submit + list files + delete each, at least
    assert by_status.get("429", 0) < 0.05 * total, requests
    for route, codes in requests.items():
        if any(part in route for part in _COMPLETION_ROUTES):
            assert codes.get("429", 0) == 0, (route, codes)  # completions go first
    # The quota (10 calls/s, 9 used) carries ~3 files/s: no long stall either.
    assert elapsed < 60, f"{elapsed:.1f} s"
