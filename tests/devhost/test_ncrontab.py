"""devhost's NCRONTAB schedules against what the Functions host's NCrontab does.

Where each expectation comes from (one tag per row):

- `ncrontab-test`: a case of NCrontab's own test suite (atifaziz/NCrontab,
  NCrontab.Tests/CrontabScheduleTests.cs, `Evaluations`), chained where that suite chains
  them. Its 5-field cases get a leading `0` seconds field here: `CrontabSchedule` uses second
  0 when an expression has no seconds field (`_seconds ?? SecondZero`).
- `ncrontab-source`: read from NCrontab's code (NCrontab/CrontabSchedule.cs,
  CrontabField.cs, CrontabFieldImpl.cs): the next day comes from the day and month fields
  and is skipped unless its day of the week matches (day AND day of week); days of the week
  are 0-6 named Sunday..Saturday; a step `a/n` runs from a to the field's maximum; a
  reversed range is swapped; names match by case-insensitive prefix.
- `docs`: the "NCRONTAB examples" table and the months/days notes of the Azure Functions
  timer trigger docs (MicrosoftDocs/azure-docs, articles/azure-functions/
  functions-bindings-timer.md and includes/functions-cron-expressions-months-days.md);
  the times are the docs' "when triggered" sentence worked out from the start time.

The Functions host parses schedules with `CrontabSchedule.TryParse(expression,
new ParseOptions { IncludingSeconds = true })` (azure-webjobs-sdk-extensions,
Timers/Scheduling/CronSchedule.cs).
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.ncrontab import NCronSchedule, ScheduleError


def at(text: str) -> datetime:
    """A UTC moment from 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def occurrences(expression: str, start: datetime, count: int) -> list[datetime]:
    schedule = NCronSchedule.parse(expression)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


# (source, expression, start, the next occurrences in order)
TABLE = [
    # --- seconds first, steps and lists of seconds
    ("ncrontab-source", "5 4 3 2 1 *", "2026-01-01 00:00:00", ["2026-01-02 03:04:05"]),
    (
        "ncrontab-source",  # */5: from the field's minimum in steps of 5 -> every 5 seconds
        "*/5 * * * * *",
        "2026-01-01 00:00:52",
        ["2026-01-01 00:00:55", "2026-01-01 00:01:00", "2026-01-01 00:01:05"],
    ),
    ("ncrontab-test", "45 * * * * *", "2003-01-01 00:00:00", ["2003-01-01 00:00:45"]),
    (
        "ncrontab-test",
        "45-47,48,49 * * * * *",
        "2003-01-01 00:00:00",
        [
            "2003-01-01 00:00:45",
            "2003-01-01 00:00:46",
            "2003-01-01 00:00:47",
            "2003-01-01 00:00:48",
            "2003-01-01 00:00:49",
            "2003-01-01 00:01:45",
        ],
    ),
    (
        "ncrontab-test",  # a/n: from a to the maximum in steps of n
        "2/5 * * * * *",
        "2003-01-01 00:00:50",
        ["2003-01-01 00:00:52", "2003-01-01 00:00:57", "2003-01-01 00:01:02"],
    ),
    ("ncrontab-test", "* 0-1 10 * * *", "2021-02-24 09:50:35", ["2021-02-24 10:00:00"]),
    ("ncrontab-test", "9 2/5 * * * *", "2003-01-01 00:57:30", ["2003-01-01 01:02:09"]),
    # --- minutes and hours: steps, ranges
    (
        "ncrontab-test",
        "0 2/5 * * * *",
        "2003-01-01 00:50:00",
        ["2003-01-01 00:52:00", "2003-01-01 00:57:00", "2003-01-01 01:02:00"],
    ),
    (
        "ncrontab-test",  # formats as 10,25,40 in NCrontab's `Formatting` test
        "0 10-40/15 * * * *",
        "2003-01-01 00:00:00",
        [
            "2003-01-01 00:10:00",
            "2003-01-01 00:25:00",
            "2003-01-01 00:40:00",
            "2003-01-01 01:10:00",
        ],
    ),
    ("ncrontab-test", "0 * 3/4 * * *", "2003-12-20 10:00:00", ["2003-12-20 11:00:00"]),
    ("ncrontab-test", "0 30 3 * * *", "2003-12-20 01:45:00", ["2003-12-20 03:30:00"]),
    (
        "ncrontab-test",
        "0 40 14/1 * * *",
        "2000-01-01 12:00:00",
        ["2000-01-01 14:40:00", "2000-01-01 15:40:00"],
    ),
    (
        "docs",  # once every five minutes
        "0 */5 * * * *",
        "2026-03-02 08:00:00",
        ["2026-03-02 08:05:00", "2026-03-02 08:10:00", "2026-03-02 08:15:00"],
    ),
    (
        "docs",  # once at the top of every hour
        "0 0 * * * *",
        "2026-03-02 08:00:00",
        ["2026-03-02 09:00:00", "2026-03-02 10:00:00"],
    ),
    (
        "docs",  # once every two hours
        "0 0 */2 * * *",
        "2026-03-02 08:00:00",
        ["2026-03-02 10:00:00", "2026-03-02 12:00:00"],
    ),
    (
        "docs",  # once every hour from 9 AM to 5 PM
        "0 0 9-17 * * *",
        "2026-03-02 16:30:00",
        ["2026-03-02 17:00:00", "2026-03-03 09:00:00", "2026-03-03 10:00:00"],
    ),
    (
        "docs",  # at 9:30 AM every day
        "0 30 9 * * *",
        "2026-03-02 10:00:00",
        ["2026-03-03 09:30:00", "2026-03-04 09:30:00"],
    ),
    # --- days of the month
    (
        "ncrontab-test",
        "0 30 * 1 * *",
        "2003-01-07 00:00:00",
        ["2003-02-01 00:30:00", "2003-02-01 01:30:00"],
    ),
    (
        "ncrontab-test",  # months without a 30th or 31st are skipped for those days
        "0 0 0 15,30,31 * *",
        "2000-01-31 00:00:00",
        [
            "2000-02-15 00:00:00",
            "2000-03-15 00:00:00",
            "2000-03-30 00:00:00",
            "2000-03-31 00:00:00",
            "2000-04-15 00:00:00",
            "2000-04-30 00:00:00",
            "2000-05-15 00:00:00",
        ],
    ),
    (
        "ncrontab-test",  # leap years only
        "0 1 12 29 2 *",
        "2000-01-01 12:00:00",
        ["2000-02-29 12:01:00", "2004-02-29 12:01:00", "2008-02-29 12:01:00"],
    ),
    # --- months: numbers, names, prefixes, steps
    ("ncrontab-test", "0 10 * * 6 *", "2003-12-01 05:00:00", ["2004-06-01 00:10:00"]),
    (
        "ncrontab-test",
        "0 10 * * February,April-Jun *",
        "2002-07-01 05:00:00",
        ["2003-02-01 00:10:00"],
    ),
    (
        "ncrontab-test",  # any case, any prefix of the English name
        "0 20 * * january,FeB,Mar,april,May,JuNE,July,Augu,SEPT-October,Nov,DECEM *",
        "1988-03-11 14:23:00",
        ["1988-03-11 15:20:00"],
    ),
    (
        "ncrontab-source",  # */2 months = 1,3,5,... (NCrontab's `Formatting` test)
        "0 0 0 1 */2 *",
        "2026-01-01 00:00:00",
        ["2026-03-01 00:00:00", "2026-05-01 00:00:00"],
    ),
    # --- days of the week: numbers (0 = Sunday), names, ranges
    ("ncrontab-test", "0 30 6 * * 0", "2003-06-26 10:00:00", ["2003-06-29 06:30:00"]),
    ("ncrontab-test", "0 30 6 * * sunday", "2003-06-26 10:00:00", ["2003-06-29 06:30:00"]),
    ("ncrontab-test", "0 30 6 * * SUNDAY", "2003-06-26 10:00:00", ["2003-06-29 06:30:00"]),
    (
        "ncrontab-test",
        "0 1 12 * * 2",
        "2003-06-19 00:00:00",
        ["2003-06-24 12:01:00", "2003-07-01 12:01:00"],
    ),
    (
        "ncrontab-test",
        "0 15 18 * * Mon",
        "2003-06-01 14:55:00",
        [
            "2003-06-02 18:15:00",
            "2003-06-09 18:15:00",
            "2003-06-16 18:15:00",
            "2003-06-23 18:15:00",
            "2003-06-30 18:15:00",
            "2003-07-07 18:15:00",
        ],
    ),
    ("ncrontab-test", "0 * * * * Mon", "2003-01-01 00:00:00", ["2003-01-06 00:00:00"]),
    (
        "docs",  # at 9:30 AM every weekday (2026-03-06 is a Friday)
        "0 30 9 * * 1-5",
        "2026-03-06 10:00:00",
        ["2026-03-09 09:30:00", "2026-03-10 09:30:00"],
    ),
    (
        "ncrontab-source",  # a reversed range is swapped: Fri-Mon is Mon-Fri, not Fri..Mon
        "0 30 9 * * Fri-Mon",
        "2026-03-06 10:00:00",
        ["2026-03-09 09:30:00", "2026-03-10 09:30:00"],
    ),
    (
        "docs",  # at 9:30 AM every Monday in January
        "0 30 9 * Jan Mon",
        "2026-02-01 00:00:00",
        [
            "2027-01-04 09:30:00",
            "2027-01-11 09:30:00",
            "2027-01-18 09:30:00",
            "2027-01-25 09:30:00",
            "2028-01-03 09:30:00",
        ],
    ),
    # --- both day fields set: the day AND the day of the week must match
    (
        "ncrontab-test",  # 2003-09-01 and 2003-12-01 are the first Mondays that are the 1st
        "0 45 16 1 * Mon",
        "2003-01-01 12:00:00",
        ["2003-09-01 16:45:00", "2003-12-01 16:45:00"],
    ),
    (
        "ncrontab-source",  # the first Monday of the month (Vixie cron would fire 1-7 Jan)
        "0 0 9 1-7 * Mon",
        "2026-01-01 00:00:00",
        [
            "2026-01-05 09:00:00",
            "2026-02-02 09:00:00",
            "2026-03-02 09:00:00",
            "2026-04-06 09:00:00",
        ],
    ),
    (
        "ncrontab-source",  # the 13th when it is a Friday
        "0 0 0 13 * 5",
        "2026-01-01 00:00:00",
        ["2026-02-13 00:00:00", "2026-03-13 00:00:00", "2026-11-13 00:00:00"],
    ),
]


@pytest.mark.parametrize(
    ("source", "expression", "start", "expected"),
    TABLE,
    ids=[f"{row[0]}: {row[1]}" for row in TABLE],
)
def test_occurrences_match_ncrontab(
    source: str, expression: str, start: str, expected: list[str]
) -> None:
    found = occurrences(expression, at(start), len(expected))
    assert [f"{t:%Y-%m-%d %H:%M:%S}" for t in found] == expected, source


def test_every_listed_occurrence_is_on_its_day_of_week() -> None:
    # The AND rule, independent of the table: every occurrence of "1-7 * Mon" in two years
    # is a Monday in the first week (with Vixie cron's OR, most would not be Mondays).
    found = occurrences("0 0 9 1-7 * Mon", at("2026-01-01 00:00:00"), 24)
    assert all(t.weekday() == 0 and t.day <= 7 for t in found)
    assert len({(t.year, t.month) for t in found}) == 24  # exactly one per month


def test_occurrences_are_utc_from_aware_input() -> None:
    start = at("2026-03-02 08:00:00")
    local = start.astimezone(timezone(timedelta(hours=2)))
    assert NCronSchedule.parse("0 0 9 * * *").next_after(local) == start.replace(hour=9)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", r"has 5 fields.*prefix it with '0 '"),
        ("* * * * * * *", r"has 7 fields"),
        ("", r"has 0 fields"),
        ("61 * * * * *", r"the second field\): 61 is out of range; expected 0-59"),
        ("0 60 * * * *", r"the minute field"),
        ("0 0 25 * * *", r"the hour field"),
        ("0 0 0 32 * *", r"the day field"),
        ("0 0 0 0 * *", r"the day field\): 0 is out of range; expected 1-31"),
        ("0 0 0 * 13 *", r"the month field"),
        ("0 0 0 * * Funday", r"the day-of-week field\): 'Funday' is not a day-of-week name"),
        ("*/x * * * * *", r"the second field"),
        ("*/0 * * * * *", r"the second field\): '\*/0' has a step of 0"),
        ("0 0 0 * * 1,,2", r"the day-of-week field"),
        ("0 0 0 * Jan-Foo *", r"the month field\): 'Foo' is not a month name"),
        ("0 0 0 5 * Mon1", r"the day-of-week field"),
        ("0 0 Jan * * *", r"the hour field\): 'Jan' is not a number or name; expected 0-23"),
        # ncrontab-source: DayOfWeek is 0-6, a 7 is above its maximum (Unix cron's Sunday)
        ("0 0 0 * * 7", r"the day-of-week field\): 7 is out of range.*use 0 or Sun"),
        ("0 0 0 * * 1-7", r"the day-of-week field\): 7 is out of range"),
        # cron extensions croniter would accept but NCrontab's parser has no syntax for
        ("0 0 0 L * *", r"the day field.*NCRONTAB does not have"),
        ("0 0 0 15W * *", r"the day field.*NCRONTAB does not have"),
        ("0 0 0 * * 1#1", r"the day-of-week field.*NCRONTAB does not have"),
        ("0 0 0 ? * Mon", r"the day field.*NCRONTAB does not have"),
        ("H * * * * *", r"the second field.*NCRONTAB does not have"),
        # Valid fields whose dates never come: said at parse time, not at host start.
        ("0 0 0 31 Feb *", r"has no occurrence .* never fall together"),
        ("0 0 0 30 2 *", r"has no occurrence"),
    ],
)
def test_invalid_expressions_are_rejected_clearly(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        NCronSchedule.parse(expression)
