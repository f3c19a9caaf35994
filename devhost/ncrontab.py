"""Azure Functions timer schedules for devhost: NCRONTAB occurrences in UTC.

`shared.ncrontab` checks an expression the way NCrontab (the Functions host's parser) reads it
and rewrites it in croniter's syntax; see its docstring for the rules. Here croniter computes
the occurrences with seconds first (`second_at_beginning`) and NCrontab's AND of the day and
day-of-week fields (`day_or=False`; croniter's default is Vixie cron's OR).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from croniter import CroniterBadDateError, croniter

from shared.ncrontab import FIELDS, ScheduleError, to_croniter

__all__ = ["FIELDS", "NCronSchedule", "ScheduleError"]

# A schedule is checked for an occurrence after this moment when it is parsed.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class NCronSchedule:
    """A parsed NCRONTAB schedule that yields UTC occurrences."""

    expression: str
    _cron: str = field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str) -> NCronSchedule:
        """Validate `expression`; raises ScheduleError saying which field is wrong."""
        cron = to_croniter(expression)
        if not croniter.is_valid(cron, second_at_beginning=True):  # a safety net: checked above
            raise ScheduleError(f"timer schedule {expression!r} is not a valid NCRONTAB expression")
        schedule = cls(expression=expression, _cron=cron)
        schedule.next_after(_PROBE)  # a day that never comes (31 Feb) fails here, not at start
        return schedule

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime), in UTC."""
        start = moment.astimezone(UTC)
        try:
            schedule = croniter(self._cron, start, day_or=False, second_at_beginning=True)
            return schedule.get_next(datetime).astimezone(UTC)
        except CroniterBadDateError:
            raise ScheduleError(
                f"timer schedule {self.expression!r} has no occurrence after "
                f"{start:%Y-%m-%d}: its day, month and day of the week never fall together "
                "(e.g. day 31 of February). Check the day and month fields."
            ) from None
