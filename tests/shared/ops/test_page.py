"""The status page's HTML and charts, pure: escaping, the nonce, empty states."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.ops.charts import bar_chart, line_chart
from shared.ops.page import content_security_policy, render_status_page

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>.wav'


def stats(**changes: Any) -> dict[str, Any]:
    hours = [
        {
            "hour": f"2026-12-05T{h:02}:00:00Z",
            "done": h % 3,
            "failed": 0,
            "rejected": 0,
            "turnaroundP50Seconds": None,
            "turnaroundP95Seconds": None,
        }
        for h in range(10)
    ]
    base = {
        "hours": 10,
        "counts": {"done": 9, "failed": 1, "rejected": 0},
        "inFlight": 0,
        "perHour": hours,
        "turnaroundP50Seconds": 12.0,
        "turnaroundP95Seconds": 50.0,
        "audioHoursTranscribed": 0.5,
        "speechRequestsPerRecording": None,
        "topFailureReasons": [],
    }
    return {**base, **changes}


def failure(name: str) -> dict[str, Any]:
    return {
        "key": "tj-abc",
        "recording": name,
        "state": "failed",
        "reasonCode": "OutOfAttempts",
        "reasonMessage": f"gave up on {name}",
        "advice": "Upload it again later.",
        "finished": "2026-12-05T09:00:00Z",
    }


def test_user_input_is_escaped_everywhere_and_only_the_nonced_script_exists() -> None:
    html = render_status_page(
        stats=stats(), in_flight=[], failures=[failure(HOSTILE)], now=NOW, nonce="n0nce"
    )
    assert "<img" not in html
    assert "<script>alert" not in html
    assert html.count("<script") == 1
    assert '<script nonce="n0nce">' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'data-name="&quot;&gt;&lt;img' in html  # attribute values too
    policy = content_security_policy("n0nce")
    assert "script-src 'nonce-n0nce'" in policy
    assert "unsafe-inline" not in policy


def test_empty_states_say_so() -> None:
    html = render_status_page(stats=stats(), in_flight=[], failures=[], now=NOW, nonce="n")
    assert "Nothing is in flight." in html
    assert "No failures in the last 10 h." in html
    assert 'id="failures"' not in html


def test_charts_are_labelled_images_with_their_numbers_in_words() -> None:
    bars = bar_chart("c1", "Finished per hour", ["08:00", "09:00"], [("done", "done", [2, 5])])
    assert 'role="img"' in bars
    assert 'aria-labelledby="c1-title c1-desc"' in bars
    assert "done 7 in total" in bars
    assert bars.count("<rect") == 2
    line = line_chart("c2", "Turnaround", ["08:00", "09:00"], [("p50", "p50", [None, None])], " s")
    assert "no job finished in this window" in line
    assert "<polyline" not in line
