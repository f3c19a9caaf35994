"""The adaptive rule: a recording goes alone while a submission slot is free, else it queues."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from shared.batch_admission import BACKLOG_LAG_S, admission, submit_singly
from shared.rate_limit import CallPurpose, RateLimit, RateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    admission().reset()
    yield
    admission().reset()


def runtime(limiter: RateLimiter | None, *, max_files: int = 100, window: float = 5.0) -> Any:
    settings = SimpleNamespace(batch_max_files=max_files, batch_window_seconds=window)
    return SimpleNamespace(
        settings=settings, speech=SimpleNamespace(transport=SimpleNamespace(limiter=limiter))
    )


def test_a_lone_recording_goes_alone_while_a_slot_is_free() -> None:
    ticks = Ticks()
    limiter = RateLimiter(RateLimit(10, 10.0), clock=ticks)
    rt = runtime(limiter)
    assert submit_singly(rt, now=ticks())
    # The window's submission share (3 of 10) used up: the next one would wait, so it queues.
    for _ in range(3):
        assert limiter.try_acquire(CallPurpose.SUBMISSION) == 0.0
    assert not submit_singly(rt, now=ticks())
    ticks.now += 10.0  # the window moved on
    assert submit_singly(rt, now=ticks())


def test_once_a_backlog_queues_recordings_it_keeps_queueing_for_two_windows() -> None:
    rt = runtime(None)
    admission().last_queued = 100.0
    assert not submit_singly(rt, now=105.0)
    assert not submit_singly(rt, now=109.9)
    assert submit_singly(rt, now=110.1)


def test_batch_max_files_1_always_submits_alone() -> None:
    ticks = Ticks()
    limiter = RateLimiter(RateLimit(10, 10.0), clock=ticks)
    limiter.pause(60.0)
    admission().last_queued = ticks()
    assert submit_singly(runtime(limiter, max_files=1), now=ticks())
    assert not submit_singly(runtime(limiter), now=ticks())


def test_a_recording_its_trigger_found_late_is_part_of_a_backlog() -> None:
    rt = runtime(None)
    assert submit_singly(rt, trigger_lag_s=1.0, now=0.0)  # a trickle: triggered at once
    # The host is working through a burst a few a second: slots are free, yet it queues.
    assert not submit_singly(rt, trigger_lag_s=BACKLOG_LAG_S + 1, now=0.0)
