"""Timer trigger: schedule from settings, past_due, one run at a time."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from devhost.services import wait_for
from devhost.setting_refs import BindingConfigError
from tests.devhost.conftest import load_fixture_app

T0 = datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


class Clock:
    """A settable clock for the host (time is an input here, not a service)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def timer_app(monkeypatch):
    monkeypatch.setenv("DEVHOST_TEST_SCHEDULE", "*/10 * * * * *")
    return load_fixture_app("timer_app")


def test_schedule_comes_from_the_setting_and_fires_on_time(timer_app, make_host):
    clock = Clock(T0)
    host = make_host(timer_app, clock=clock)
    timer = host.timers["tick"]
    assert timer.schedule.expression == "*/10 * * * * *"
    assert timer.next_due == T0.replace(second=10, microsecond=0)

    clock.now = T0.replace(second=9)
    assert host.fire_timer("tick") is None  # not due yet
    clock.now = T0.replace(second=10, microsecond=300000)
    outcome = host.fire_timer("tick")
    assert outcome is not None
    assert outcome.succeeded
    assert [c["past_due"] for c in timer_app.calls] == [False]
    assert timer.next_due == T0.replace(second=20, microsecond=0)


def test_late_run_is_past_due_and_missed_occurrences_collapse(timer_app, make_host):
    clock = Clock(T0)
    host = make_host(timer_app, clock=clock)
    clock.now = T0 + timedelta(seconds=45)  # 10, 20, 30 and 40 all passed
    host.fire_timer("tick")
    assert [c["past_due"] for c in timer_app.calls] == [True]
    assert host.timers["tick"].next_due == T0.replace(second=50, microsecond=0)
    assert host.fire_timer("tick") is None  # one run covered the missed ones


def test_a_running_timer_delays_the_next_run(monkeypatch, make_host):
    monkeypatch.setenv("DEVHOST_TEST_SCHEDULE", "* * * * * *")  # every second
    app = load_fixture_app("timer_app")
    app.gate.clear()  # the first run blocks until released
    host = make_host(app)
    host.start()
    timer = host.timers["tick"]
    wait_for(lambda: len(app.calls) == 1, timeout=5, what="the first run")
    running_due = timer.next_due  # the occurrence being run (advanced when the run ends)
    # Let the next occurrence pass by more than a second while the first run is going.
    wait_for(
        lambda: datetime.now(UTC) > running_due + timedelta(seconds=2.3),
        timeout=5,
        interval=0.05,
        what="the next occurrence to pass",
    )
    assert len(app.calls) == 1  # not started alongside the running one
    app.gate.set()
    wait_for(lambda: len(app.calls) >= 2, timeout=5, what="the delayed run")
    host.stop()
    assert app.calls[1]["past_due"] is True
    assert app.concurrency["max"] == 1


def test_invalid_schedule_setting_fails_at_start_naming_the_function(monkeypatch, make_host):
    monkeypatch.setenv("DEVHOST_TEST_SCHEDULE", "*/10 * * * *")
    app = load_fixture_app("timer_app")
    with pytest.raises(BindingConfigError, match=r"Function 'tick'.*has 5 fields"):
        make_host(app)


def test_missing_schedule_setting_is_reported(monkeypatch, make_host):
    monkeypatch.delenv("DEVHOST_TEST_SCHEDULE", raising=False)
    app = load_fixture_app("timer_app")
    with pytest.raises(BindingConfigError, match=r"'DEVHOST_TEST_SCHEDULE'"):
        make_host(app)


def test_run_on_startup_fires_once_at_start(timer_app, make_host, caplog):
    host = make_host(timer_app)
    assert host.timers["on_startup"].run_on_startup is True
    assert host.timers["tick"].run_on_startup is False
    with caplog.at_level(logging.INFO, logger="devhost"):
        host.start()
    assert any(
        m.startswith("The next 3 occurrences of the 'tick' schedule (Cron: '*/10 * * * * *')")
        for m in caplog.messages
    )
    wait_for(lambda: timer_app.startup_calls, timeout=5, what="the startup run")
    host.stop()
    assert timer_app.startup_calls == [False]
