"""The pure N/SECONDS rate and sliding window that the app's limiter and the emulator share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.rate_window import Rate, SlidingWindow


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90/10", Rate(90, 10.0)), (" 20 / 2.5 ", Rate(20, 2.5)), ("1/0.5", Rate(1, 0.5))],
)
def test_parse(text: str, expected: Rate) -> None:
    assert Rate.parse(text) == expected


@pytest.mark.parametrize("text", ["90", "ninety/10", "90/0", "0/10", "-5/10", "90/10/2", ""])
def test_parse_rejects_naming_the_form_and_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not N/SECONDS with at least 1 call .* e\.g\. 90/10"):
        Rate.parse(text)


def test_a_rate_must_allow_a_call_per_positive_time() -> None:
    with pytest.raises(ValueError, match="at least 1 call"):
        Rate(0, 10.0)
    with pytest.raises(ValueError, match="at least 1 call"):
        Rate(5, 0.0)


def test_str_round_trips() -> None:
    assert str(Rate(100, 10.0)) == "100/10"
    assert Rate.parse(str(Rate(3, 2.5))) == Rate(3, 2.5)


def test_window_has_room_until_the_cap_then_says_when_the_oldest_leaves() -> None:
    window = SlidingWindow()
    for now in (0.0, 1.0, 2.0):
        assert window.wait(now, cap=3, per_seconds=10.0) == 0.0
        window.add(now)
    assert window.wait(3.0, cap=3, per_seconds=10.0) == pytest.approx(7.0)
    # With a lower cap the call that must leave is a later one.
    assert window.wait(3.0, cap=2, per_seconds=10.0) == pytest.approx(8.0)
    # At exactly t=10 the first call has left (the window is (now - per, now]).
    assert window.wait(10.0, cap=3, per_seconds=10.0) == 0.0
    assert len(window) == 2


def test_a_full_window_answers_at_least_a_millisecond() -> None:
    window = SlidingWindow()
    window.add(5.0)
    # The call leaves at 15.0; just before that, a waiter still sleeps 1 ms, not 1 ns.
    assert window.wait(15.0 - 1e-9, cap=1, per_seconds=10.0) == pytest.approx(1e-3)


def test_clear_forgets_every_call() -> None:
    window = SlidingWindow()
    window.add(1.0)
    window.add(2.0)
    window.clear()
    assert len(window) == 0
    assert window.wait(2.0, cap=1, per_seconds=10.0) == 0.0


def test_the_module_is_pure() -> None:
    # The emulator imports it: it must not drag in the app (errors, settings, httpx, Azure).
    code = (
        "import sys, shared.rate_window; "
        "print(sorted(m for m in sys.modules if m.startswith(('shared.', 'httpx', 'azure'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['shared.rate_window']"
