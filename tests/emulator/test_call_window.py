"""The busiest window of Speech calls (``max_calls_per_window`` in ``GET /_emulator/stats``)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from speech_emulator.call_log import CallLog, busiest_in
from tests.emulator.speech import admin, client


def _log(times: list[float], history_limit: int = 1000) -> CallLog:
    log = CallLog(history_limit=history_limit)
    for t in times:
        log.record(at=t)
    return log


TIMES = [0.0, 1.0, 2.0, 2.5, 10.0, 10.1, 10.2, 10.3, 20.0]


@pytest.mark.parametrize(
    ("window_s", "expected", "end"),
    [
        (0.05, 1, 0.0),
        (1.0, 4, 10.3),  # 10.0 .. 10.3
        (1.5, 4, 10.3),  # 2.0, 2.5 is only 2
        (3.0, 4, 2.5),  # 0.0 .. 2.5; 10.0 .. 10.3 ties, the earliest is reported
        (8.1, 5, 10.3),  # 2.5 .. 10.3
        (100.0, 9, 20.0),
    ],
)
def test_busiest_window_is_exact(window_s: float, expected: int, end: float) -> None:
    # Computed from history when first asked for, and the same when followed online.
    assert busiest_in(np.array(TIMES), window_s) == (expected, end)
    computed = _log(TIMES).busiest(window_s)
    assert (computed.max, computed.end, computed.exact) == (expected, end, True)
    followed = CallLog()
    followed.busiest(window_s)  # asked for before any call: followed online from here
    for t in TIMES:
        followed.record(at=t)
    assert followed.busiest(window_s).max == expected


def test_window_edges_count_like_the_rate_limiter() -> None:
    # (t - W, t]: a call exactly W seconds older is outside, as in the 429 limiter.
    assert _log([0.0, 1.0, 2.0]).busiest(1.0).max == 1
    assert _log([0.0, 0.999, 2.0]).busiest(1.0).max == 2
    followed = CallLog()
    followed.busiest(1.0)
    for t in [0.0, 1.0, 2.0, 2.5, 3.4]:
        followed.record(at=t)
    best = followed.busiest(1.0)
    assert (best.max, best.end) == (2, 2.5)  # 2.0 and 2.5 first; not 0.0 with 1.0


def test_online_tracking_stays_exact_past_the_history_limit() -> None:
    log = CallLog(history_limit=8)
    log.busiest(1.0)  # followed from the start
    burst = [100.0 + i / 100 for i in range(20)]  # 20 calls within 0.2 s
    for t in [*burst, *[200.0 + i for i in range(30)]]:
        log.record(at=t)
    followed = log.busiest(1.0)
    assert (followed.max, followed.exact, followed.calls) == (20, True, 50)
    late = log.busiest(5.0)  # first asked for after old calls were dropped
    assert late.exact is False
    assert late.max == 5


def test_reset_forgets_calls() -> None:
    log = _log(TIMES)
    log.busiest(1.0)
    log.reset()
    log.record(at=50.0)
    assert log.busiest(1.0).max == 1
    assert log.busiest(1.0).calls == 1


@pytest.mark.integration
def test_stats_report_the_busiest_window_of_speech_calls(speech_emulator_factory) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--rate-limit", "5/60")
    with client(emulator) as api, admin(emulator) as adm:
        answers = [api.get("/transcriptions").status_code for _ in range(8)]
        assert answers == [200] * 5 + [429] * 3
        # Not Speech calls: admin routes and contentUrl downloads.
        for _ in range(3):
            adm.get("/config")
        httpx.get(f"{emulator.url}/_content/a/b/c.json")
        stats = adm.get("/stats").json()
        # The configured window by default; throttled calls are calls too.
        assert stats["max_calls_per_window"]["window_s"] == 60
        assert stats["max_calls_per_window"]["max"] == 8
        assert stats["max_calls_per_window"]["calls"] == 8
        assert stats["max_calls_per_window"]["exact"] is True
        assert stats["max_calls_per_window"]["window_end"].endswith("Z")
        # Calls a few milliseconds apart: no two share a microsecond window.
        tiny = adm.get("/stats", params={"window_s": 0.000001}).json()
        assert tiny["max_calls_per_window"]["max"] == 1
        assert (
            adm.get("/stats", params={"window_s": 3600}).json()["max_calls_per_window"]["max"] == 8
        )
        for bad in ("0", "-1", "soon", "86401"):
            refused = adm.get("/stats", params={"window_s": bad})
            assert refused.status_code == 400
            assert "window_s" in refused.json()["message"]
        adm.post("/reset")
        assert adm.get("/stats").json()["max_calls_per_window"]["max"] == 0
