"""The client-side rate limiter: window, priority reserve, Retry-After pause, parsing."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from shared.errors import ConfigurationError, SpeechThrottledError
from shared.rate_limit import (
    CallPurpose,
    Limiter,
    RateLimit,
    RateLimitedError,
    RateLimiter,
    parse_rate_limit,
    shared_limiter,
)
from shared.retry import RetryPolicy
from shared.settings import Settings
from shared.speech_client import SpeechClient


class FakeClock:
    """A monotonic clock the test moves by hand; `sleep` advances it (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(
    calls: int = 10, per: float = 10.0, share: float = 0.3, reserve: float = 0.1
) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    limit = RateLimit(calls, per, submission_share=share, reserve=reserve)
    return RateLimiter(limit, clock=clock, sleep=clock.sleep), clock


def test_window_allows_calls_then_says_when_the_oldest_leaves() -> None:
    lim, clock = limiter(calls=3, per=10.0)
    for _ in range(3):
        assert lim.try_acquire(CallPurpose.STATUS) == 0.0
        clock.now += 1.0
    # Calls at t=0,1,2 (relative); now t=3: the first leaves the window at t=10.
    assert lim.try_acquire(CallPurpose.STATUS) == pytest.approx(7.0)
    clock.now += 7.0
    assert lim.try_acquire(CallPurpose.STATUS) == 0.0


def test_submissions_are_paced_to_their_share_of_the_window() -> None:
    lim, clock = limiter(calls=10, share=0.3)
    granted = 0
    while lim.try_acquire(CallPurpose.SUBMISSION) == 0.0:
        granted += 1
    assert granted == 3  # 30 % of the window
    assert lim.try_acquire(CallPurpose.SUBMISSION) == pytest.approx(10.0)
    for _ in range(7):  # completions and polls still have the rest
        assert lim.try_acquire(CallPurpose.COMPLETION) == 0.0
    assert lim.try_acquire(CallPurpose.STATUS) > 0.0
    clock.now += 10.0
    assert lim.try_acquire(CallPurpose.SUBMISSION) == 0.0


def test_a_submission_leaves_the_reserve_to_completions_and_polls() -> None:
    lim, clock = limiter(calls=10, share=1.0, reserve=0.1)
    for _ in range(9):  # completions fill 9 of 10
        assert lim.try_acquire(CallPurpose.COMPLETION) == 0.0
        clock.now += 1.0
    # At t=9 one slot is free, but it is the reserve: a submission waits for the call of
    # t=0 to leave the window (at t=10), a completion takes the slot at once.
    assert lim.try_acquire(CallPurpose.SUBMISSION) == pytest.approx(1.0)
    assert lim.try_acquire(CallPurpose.COMPLETION) == 0.0
    assert lim.try_acquire(CallPurpose.STATUS) == pytest.approx(1.0)


def test_acquire_waits_with_the_injected_sleep_and_gives_up_at_max_wait() -> None:
    lim, clock = limiter(calls=2, per=10.0)
    assert lim.acquire(CallPurpose.STATUS, max_wait=0.0)
    assert lim.acquire(CallPurpose.STATUS, max_wait=0.0)
    assert not lim.acquire(CallPurpose.STATUS, max_wait=5.0)  # a slot frees only in 10 s
    assert clock.slept == []
    assert lim.acquire(CallPurpose.STATUS, max_wait=30.0)
    assert sum(clock.slept) == pytest.approx(10.0)


def test_pause_from_retry_after_holds_every_purpose() -> None:
    lim, clock = limiter(calls=100)
    lim.pause(4.0)
    for purpose in CallPurpose:
        assert lim.try_acquire(purpose) == pytest.approx(4.0)
    lim.pause(1.0)  # a shorter pause never shortens the current one
    assert lim.wait_estimate(CallPurpose.STATUS) == pytest.approx(4.0)
    clock.now += 4.0
    assert lim.try_acquire(CallPurpose.SUBMISSION) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90/10", RateLimit(90, 10.0)),
        (" 20 / 2.5 ", RateLimit(20, 2.5)),
        ("0", None),
        ("OFF", None),
    ],
)
def test_parse_rate_limit(text: str, expected: RateLimit | None) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["90", "ninety/10", "90/0", "0/10", "-5/10", "90/10/2"])
def test_parse_rate_limit_rejects_bad_values(text: str) -> None:
    with pytest.raises(ValueError, match=r"CALLS/SECONDS|at least 1 call"):
        parse_rate_limit(text)


def _env(**extra: str) -> dict[str, str]:
    return {"SPEECH_ENDPOINT": "http://127.0.0.1:5050", "AzureWebJobsStorage": "x", **extra}


def test_setting_defaults_to_90_per_10_s_and_can_be_disabled() -> None:
    assert Settings.from_env(_env()).speech_rate_limit == RateLimit(90, 10.0)
    assert Settings.from_env(_env(SPEECH_RATE_LIMIT="off")).speech_rate_limit is None
    assert Settings.from_env(_env(SPEECH_RATE_LIMIT="20/2")).speech_rate_limit == RateLimit(20, 2.0)


def test_setting_rejects_a_malformed_limit_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"SPEECH_RATE_LIMIT.*90/10"):
        Settings.from_env(_env(SPEECH_RATE_LIMIT="fast"))


def test_one_limiter_per_endpoint_and_limit() -> None:
    a = shared_limiter("http://speech.example", RateLimit(5, 1.0))
    assert shared_limiter("http://speech.example", RateLimit(5, 1.0)) is a
    assert shared_limiter("http://other.example", RateLimit(5, 1.0)) is not a


def _client(handler: httpx.MockTransport, lim: Limiter) -> SpeechClient:
    return SpeechClient("http://speech.test", key="k" * 32, transport=handler, limiter=lim)


_JOB = {
    "self": "http://speech.test/speechtotext/transcriptions/abc",
    "displayName": "tj-x",
    "status": "Running",
    "createdDateTime": "2026-01-01T00:00:00Z",
}


def test_client_refuses_a_submission_without_sending_when_the_window_is_full() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json=_JOB)

    lim, _clock = limiter(calls=10, per=100.0, reserve=0.3)
    for _ in range(7):  # 7 of 10 used: a submission would eat into the 30 % reserve
        assert lim.try_acquire(CallPurpose.STATUS) == 0.0
    client = _client(httpx.MockTransport(handle), lim)
    with pytest.raises(RateLimitedError) as caught:
        client.submit({"displayName": "tj-x", "contentUrls": ["http://a/b.wav"]})
    assert sent == []
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1.0
    # A status call still gets one of the reserved slots.
    transcription, _ = client.get("abc")
    assert transcription.id == "abc"
    assert len(sent) == 1


def test_a_real_429_pauses_the_limiter_for_its_retry_after() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "45"}, json={"code": "TooMany"})

    lim, _ = limiter(calls=100)
    client = _client(httpx.MockTransport(handle), lim)
    with pytest.raises(SpeechThrottledError):
        client.get("abc")
    assert lim.wait_estimate(CallPurpose.COMPLETION) == pytest.approx(45.0)


def test_limiter_refusal_is_not_retried_by_the_policy() -> None:
    exc = RateLimitedError("full", retry_after=2.0)
    assert RetryPolicy().backoff(exc) is False


@dataclass
class RecordingLimiter:
    """Not a RateLimiter: any object of the `Limiter` shape plugs into the transport."""

    grant: bool = True
    estimate: float = 0.0
    asked: list[tuple[CallPurpose, float]] = field(default_factory=list)
    paused: list[float] = field(default_factory=list)

    def acquire(self, purpose: CallPurpose, *, max_wait: float) -> bool:
        self.asked.append((purpose, max_wait))
        return self.grant

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)

    def wait_estimate(self, purpose: CallPurpose) -> float:
        return self.estimate

    def __str__(self) -> str:
        return "7/1 across instances"


_EMPTY_PAGE: dict[str, object] = {"values": [], "@nextLink": None}


def test_each_operation_asks_the_limiter_for_its_purpose() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json=_JOB)
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path.endswith(("/files", "/webhooks", "/transcriptions")):
            return httpx.Response(200, json=_EMPTY_PAGE)
        return httpx.Response(200, json=_JOB)

    lim = RecordingLimiter()
    client = SpeechClient(
        "http://speech.test",
        key="k" * 32,
        transport=httpx.MockTransport(handle),
        limiter=lim,
        max_retry_wait=25.0,
    )
    client.submit({"displayName": "tj-x"})
    client.get("abc")
    list(client.iter_transcriptions())
    client.list_files("abc")
    client.delete("abc")
    list(client.webhooks.list())
    client.download("http://blob.test/r.json?sig=x")  # Storage, not the Speech API
    assert lim.asked == [
        (CallPurpose.SUBMISSION, 10.0),  # a submission only waits briefly, then defers
        (CallPurpose.STATUS, 25.0),
        (CallPurpose.STATUS, 25.0),
        (CallPurpose.COMPLETION, 25.0),
        (CallPurpose.COMPLETION, 25.0),
        (CallPurpose.STATUS, 25.0),
    ]
    assert client.request_count == 6


def test_a_refusing_limiter_sends_nothing_and_says_how_long_to_defer() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=_JOB)

    client = _client(httpx.MockTransport(handle), RecordingLimiter(grant=False, estimate=4.5))
    with pytest.raises(RateLimitedError, match="7/1 across instances") as caught:
        client.get("abc")
    assert caught.value.retry_after == 4.5
    assert sent == []
    assert client.request_count == 0


def test_a_429_without_retry_after_still_pauses_the_limiter() -> None:
    lim = RecordingLimiter()
    client = SpeechClient(
        "http://speech.test",
        key="k" * 32,
        transport=httpx.MockTransport(lambda request: httpx.Response(429)),
        limiter=lim,
        max_attempts=1,
    )
    with pytest.raises(SpeechThrottledError):
        client.get("abc")
    assert lim.paused == [1.0]
