from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.ncrontab import NCronSchedule, ScheduleError, to_croniter

START = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)  # a Monday


def occurrences(expression: str, count: int, start: datetime = START) -> list[datetime]:
    schedule = NCronSchedule.parse(expression)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_seconds_field_moves_from_first_to_last():
    assert to_croniter("5 4 3 2 1 0") == "4 3 2 1 0 5"


def test_every_ten_seconds():
    assert [t.second for t in occurrences("*/10 * * * * *", 4)] == [10, 20, 30, 40]


def test_seconds_are_not_read_as_minutes():
    # "0 */5 * * * *" is every 5 minutes at second 0, not every 5 seconds.
    times = occurrences("0 */5 * * * *", 2)
    assert times == [START.replace(minute=5), START.replace(minute=10)]


def test_ranges_and_lists():
    times = occurrences("30 0 9-10 * * *", 3)
    assert [(t.hour, t.minute, t.second) for t in times] == [(9, 0, 30), (10, 0, 30), (9, 0, 30)]
    assert [t.second for t in occurrences("5,15 * * * * *", 3)] == [5, 15, 5]


def test_day_of_week_names_and_numbers():
    saturday = occurrences("0 0 12 * * Sat", 1)[0]
    assert saturday.weekday() == 5
    assert occurrences("0 0 12 * * 6", 1)[0] == saturday
    weekdays = occurrences("0 0 9 * * Mon-Fri", 6)
    assert all(t.weekday() < 5 for t in weekdays)


def test_month_names():
    assert occurrences("0 0 0 1 Jul *", 1)[0] == datetime(2026, 7, 1, tzinfo=UTC)


def test_occurrences_are_utc_from_aware_input():
    local = START.astimezone(timezone(timedelta(hours=2)))
    assert NCronSchedule.parse("0 0 9 * * *").next_after(local) == START.replace(hour=9)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", r"has 5 fields.*prefix it with '0 '"),
        ("* * * * * * *", r"has 7 fields"),
        ("", r"has 0 fields"),
        ("61 * * * * *", r"the second field"),
        ("0 60 * * * *", r"the minute field"),
        ("0 0 25 * * *", r"the hour field"),
        ("0 0 0 32 * *", r"the day field"),
        ("0 0 0 * 13 *", r"the month field"),
        ("0 0 0 * * Funday", r"the day-of-week field"),
        ("*/x * * * * *", r"the second field"),
    ],
)
def test_invalid_expressions_are_rejected_clearly(expression, message):
    with pytest.raises(ScheduleError, match=message):
        NCronSchedule.parse(expression)
