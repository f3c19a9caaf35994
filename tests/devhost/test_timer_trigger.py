"""Timer trigger: schedule from settings, past_due, one run at a time."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from devhost.indexing import find_function_app, index_app
from devhost.ncrontab import NCronSchedule
from devhost.services import wait_for
from devhost.setting_refs import BindingConfigError
from devhost.timer_status import should_monitor
from devhost.timer_trigger import PAST_DUE_AFTER
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
    # Hold the first run until the next occurrence (a second later) is overdue by more than
    # the past-due threshold, so the run after it must be a late one.
    overdue = running_due + timedelta(seconds=1) + PAST_DUE_AFTER + timedelta(seconds=0.1)
    wait_for(
        lambda: datetime.now(UTC) > overdue,
        timeout=5,
        interval=0.05,
        what="the next occurrence to be overdue",
    )
    app.gate.set()
    wait_for(lambda: len(app.calls) >= 2, timeout=5, what="the delayed run")
    host.stop()
    first, delayed = app.calls[0], app.calls[1]
    # The occurrence that fell due during the first run started only once it had ended,
    # late (past due) - not alongside it.
    assert delayed["started"] >= first["ended"]
    assert delayed["past_due"] is True
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


@pytest.mark.integration
def test_occurrence_missed_while_down_runs_past_due_at_start(storage_env, monkeypatch, make_host):
    monkeypatch.setenv("DEVHOST_TEST_SCHEDULE", "0 * * * * *")  # every minute: monitored
    app = load_fixture_app("timer_app")
    specs = index_app(find_function_app(app))
    clock = Clock(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))
    first = make_host(specs, clock=clock)
    timer = first.timers["tick"]
    assert timer.status is not None
    assert timer.catch_up() is None  # first start: nothing missed, status recorded
    clock.now = datetime(2026, 1, 1, 10, 1, 0, 200000, tzinfo=UTC)
    assert first.fire_timer("tick") is not None
    status = timer.status.read()
    assert status is not None
    assert status.last == datetime(2026, 1, 1, 10, 1, tzinfo=UTC)
    assert status.next == datetime(2026, 1, 1, 10, 2, tzinfo=UTC)

    # "Down" from 10:01 to 10:05:10: the 10:02 ... 10:05 occurrences were missed.
    clock.now = datetime(2026, 1, 1, 10, 5, 10, tzinfo=UTC)
    second = make_host(specs, clock=clock)
    outcome = second.timers["tick"].catch_up()
    assert outcome is not None
    assert outcome.succeeded
    assert [c["past_due"] for c in app.calls] == [False, True]  # one catch-up run
    assert second.timers["tick"].next_due == datetime(2026, 1, 1, 10, 6, tzinfo=UTC)
    assert second.timers["tick"].catch_up() is None  # caught up: status says 10:06 next


def test_sub_minute_schedules_are_not_monitored(timer_app, make_host):
    host = make_host(timer_app)  # */10 seconds
    assert host.timers["tick"].status is None


def test_should_monitor_honours_use_monitor():
    every_second = NCronSchedule.parse("* * * * * *")
    hourly = NCronSchedule.parse("0 0 * * * *")
    assert should_monitor(hourly, None, T0) is True
    assert should_monitor(every_second, None, T0) is False
    assert should_monitor(every_second, True, T0) is True
    assert should_monitor(hourly, False, T0) is False
