"""Azure Functions timer schedules: the syntax of 6-field NCRONTAB expressions (pure).

The Functions host reads a schedule with NCrontab (`CrontabSchedule.TryParse` with
`IncludingSeconds = true`, in azure-webjobs-sdk-extensions' `CronSchedule`). This module
checks an expression the way NCrontab parses it and rewrites it in croniter's syntax; the app
checks its schedule settings with it at start-up, and devhost (`devhost.ncrontab`) hands the
rewritten form to croniter to compute occurrences. No third-party imports: the app deploys it.

- Seconds come first: `{second} {minute} {hour} {day} {month} {day-of-week}` (croniter's
  `second_at_beginning`).
- When both the day and the day of the week are restricted, BOTH must match: NCrontab finds
  the next day from the day and month fields, then skips it unless its day of the week
  matches, so `0 0 9 1-7 * Mon` is the first Monday of the month. croniter defaults to Vixie
  cron's OR (day OR day of week); `day_or=False` is NCrontab's AND.
- Month and day names are English, case-insensitive, and may be shortened to any prefix
  (`Jan`, `FeB`, `SEPT`, `sunday`); the first name that starts with the text wins, as in
  NCrontab's `CrontabFieldImpl.ParseValue`. croniter knows only three-letter names, so
  names become numbers here.
- Days of the week are 0-6 with Sunday 0; NCrontab rejects 7 (croniter would read Sunday).
- A reversed range counts as the same range forwards (`Fri-Mon` is `Mon-Fri`): NCrontab's
  `CrontabField.Accumulate` swaps the ends (croniter would wrap around the week instead).
- croniter's extensions (`L`, `W`, `#`, `?`, `H`) are not NCRONTAB and are rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

# One list item: `*`, a value or a range `a-b` (values are numbers or names), and `/step`.
_ITEM = re.compile(
    r"(?P<base>\*|(?P<first>[A-Za-z0-9]+)(?:-(?P<last>[A-Za-z0-9]+))?)(?:/(?P<step>[0-9]+))?"
)
_NUMBER = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z]+")
_NOT_OURS = " (L, W, #, ? and H are cron extensions NCRONTAB does not have)"


__all__ = ["FIELDS", "ScheduleError", "to_croniter"]


class ScheduleError(ValueError):
    """A timer schedule is not a valid 6-field NCRONTAB expression."""


@dataclass(frozen=True)
class _Field:
    """One NCRONTAB field: its name, value range and (for month, day of week) names."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        names = f", or a name such as {self.names[0][:3]}" if self.names else ""
        sunday = " (Sunday is 0)" if self.name == "day-of-week" else ""
        return f"{self.low}-{self.high}{sunday}{names}"


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _DAYS),
)
FIELDS = tuple(f.name for f in _FIELDS)


class _FieldError(ValueError):
    """Why one field is invalid (ScheduleError adds the expression and the field)."""


def _value(spec: _Field, text: str) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
    elif spec.names and _NAME.fullmatch(text):
        wanted = text.lower()
        matches = [i for i, name in enumerate(spec.names) if name.lower().startswith(wanted)]
        if not matches:
            raise _FieldError(f"{text!r} is not a {spec.name} name ({', '.join(spec.names)})")
        value = spec.low + matches[0]
    else:
        raise _FieldError(
            f"{text!r} is not a number or name; expected {spec.describe()}{_NOT_OURS}"
        )
    if spec.name == "day-of-week" and value == 7:
        raise _FieldError(
            "7 is out of range: NCRONTAB days of the week are 0-6; use 0 or Sun for Sunday"
        )
    if not spec.low <= value <= spec.high:
        raise _FieldError(f"{value} is out of range; expected {spec.describe()}")
    return value


def _normalise_field(spec: _Field, text: str) -> str:
    """The field with names as numbers and ranges forwards, in croniter's syntax."""
    items = []
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise _FieldError(
                f"{item!r} is not *, a value, a range a-b, or one with /step{_NOT_OURS}"
            )
        step = match["step"]
        if step is not None and int(step) == 0:
            raise _FieldError(f"{item!r} has a step of 0; use a step of at least 1")
        if match["base"] == "*":
            base = "*"
        else:
            first = _value(spec, match["first"])
            last = first if match["last"] is None else _value(spec, match["last"])
            low, high = sorted((first, last))
            base = str(low) if match["last"] is None else f"{low}-{high}"
        items.append(base if step is None else f"{base}/{int(step)}")
    return ",".join(items)


def to_croniter(expression: str) -> str:
    """The expression checked field by field and rewritten for croniter (seconds first).

    Raises ScheduleError naming the field that is wrong and why.
    """
    parts = expression.split()
    if len(parts) != len(_FIELDS):
        hint = (
            " A 5-field Unix cron has no seconds: prefix it with '0 '." if len(parts) == 5 else ""
        )
        raise ScheduleError(
            f"timer schedule {expression!r} has {len(parts)} fields; expected the 6 of "
            f"Azure Functions NCRONTAB: {' '.join('{' + f + '}' for f in FIELDS)}, e.g. "
            f"'*/10 * * * * *' for every 10 seconds.{hint}"
        )
    fields = []
    for spec, text in zip(_FIELDS, parts, strict=True):
        try:
            fields.append(_normalise_field(spec, text))
        except _FieldError as exc:
            raise ScheduleError(
                f"timer schedule {expression!r} is not a valid NCRONTAB expression (the "
                f"{spec.name} field): {exc}. Each field is *, a number, a range a-b, a list "
                "a,b, a step */n or a-b/n, or a month/day name (Jan, Mon)."
            ) from None
    return " ".join(fields)
