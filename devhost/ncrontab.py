"""Azure Functions timer schedules: 6-field NCRONTAB expressions, evaluated in UTC.

NCRONTAB puts seconds FIRST (`{second} {minute} {hour} {day} {month} {day-of-week}`);
croniter takes seconds as the sixth field, so the expression is rotated before parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from croniter import CroniterError, croniter

FIELDS = ("second", "minute", "hour", "day", "month", "day-of-week")


class ScheduleError(ValueError):
    """A timer schedule is not a valid 6-field NCRONTAB expression."""


def to_croniter(expression: str) -> str:
    """Rotate a 6-field NCRONTAB expression into croniter's order (seconds last).

    Raises ScheduleError with the reason and an example when the shape is wrong.
    """
    parts = expression.split()
    if len(parts) != 6:
        hint = (
            " A 5-field Unix cron has no seconds: prefix it with '0 '." if len(parts) == 5 else ""
        )
        raise ScheduleError(
            f"timer schedule {expression!r} has {len(parts)} fields; Azure Functions NCRONTAB "
            f"needs 6: {' '.join('{' + f + '}' for f in FIELDS)}, e.g. '*/10 * * * * *' "
            f"for every 10 seconds.{hint}"
        )
    second, *rest = parts
    return " ".join([*rest, second])


@dataclass(frozen=True)
class NCronSchedule:
    """A parsed NCRONTAB schedule that yields UTC occurrences."""

    expression: str
    _cron: str = field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str) -> NCronSchedule:
        """Validate `expression`; raises ScheduleError saying which field is wrong."""
        cron = to_croniter(expression)
        if not croniter.is_valid(cron):
            bad = _first_bad_field(expression.split())
            where = f" (the {bad} field)" if bad else ""
            raise ScheduleError(
                f"timer schedule {expression!r} is not a valid NCRONTAB expression{where}. "
                "Fields: second minute hour day month day-of-week; each is *, a number, "
                "a range a-b, a list a,b, a step */n, or a month/day name (Jan, Mon)."
            )
        return cls(expression=expression, _cron=cron)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime), in UTC."""
        start = moment.astimezone(UTC)
        return croniter(self._cron, start).get_next(datetime).astimezone(UTC)


def _first_bad_field(parts: list[str]) -> str | None:
    """Name the first field that makes the expression invalid (each tested alone)."""
    for index, name in enumerate(FIELDS):
        probe = ["*"] * 6
        probe[index] = parts[index]
        second, *rest = probe
        try:
            if not croniter.is_valid(" ".join([*rest, second])):
                return name
        except CroniterError:
            return name
    return None
