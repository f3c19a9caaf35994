"""Timer trigger: NCRONTAB schedule in UTC, one run at a time, `past_due` when late.

Runs happen on the listener's own thread, so a run that is still going delays the next
one (which then starts late, with `past_due=True`); missed occurrences collapse into one.
With a `ListenerLock` (several instances on one storage account) the listener is a
singleton, as on the Functions host: only the instance holding the lock's blob lease runs
the schedule; the others try to take it every `lock.retry` seconds, and the one that does
starts from the next occurrence after catching up, like a freshly started host.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest

from devhost.invoker import Invoker, Outcome
from devhost.leases import ListenerLock
from devhost.ncrontab import NCronSchedule
from devhost.timer_status import ScheduleStatus, TimerStatusStore

log = logging.getLogger("devhost")

PAST_DUE_AFTER = timedelta(seconds=1)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class TimerTriggerListener:
    """Fires one function on its schedule."""

    def __init__(
        self,
        invoker: Invoker,
        *,
        schedule: NCronSchedule,
        run_on_startup: bool = False,
        clock: Clock = utc_now,
        status: TimerStatusStore | None = None,
        lock: ListenerLock | None = None,
    ) -> None:
        self.invoker = invoker
        self.lock = lock
        self.schedule = schedule
        self.run_on_startup = run_on_startup
        self.status = status
        self._clock = clock
        self._last: datetime | None = None
        self.next_due = schedule.next_after(clock())
        self._run_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.invoker.spec.name

    def fire(self, *, scheduled: datetime | None = None, startup: bool = False) -> Outcome:
        """Run the function now for the occurrence `scheduled` (one run at a time)."""
        with self._run_lock:
            now = self._clock()
            past_due = scheduled is not None and now - scheduled > PAST_DUE_AFTER
            request = TimerRequest(
                past_due=past_due,
                schedule_status={
                    "Last": self._last.isoformat() if self._last else None,
                    "Next": self.schedule.next_after(scheduled or now).isoformat(),
                    "LastUpdated": now.isoformat(),
                },
                schedule={"AdjustForDST": False},
            )
            reason = (
                "Timer fired at startup (runOnStartup)."
                if startup
                else f"Timer fired at {now.isoformat()}"
            )
            outcome = self.invoker(reason, request)
            self._last = scheduled or now
            return outcome

    def run_pending(self) -> Outcome | None:
        """Fire when the next occurrence is due; then schedule the one after it.

        Occurrences that passed before this run started are covered by it; those that pass
        while it runs collapse into one late (past-due) run right after it.
        """
        now = self._clock()
        if now < self.next_due:
            return None
        scheduled = self.next_due
        outcome = self.fire(scheduled=scheduled)
        self.next_due = self.schedule.next_after(max(scheduled, now))
        self._save_status(scheduled)
        return outcome

    def catch_up(self) -> Outcome | None:
        """At start, with a monitored schedule: run an occurrence missed while no host ran.

        The stored status says which occurrence was due next; if it has passed, it runs now
        (past due), once, however many were missed, as the host does.
        """
        if self.status is None:
            return None
        try:
            status = self.status.read()
        except Exception:  # monitoring is best effort: the schedule itself still runs
            log.exception("Reading the schedule status of %s failed", self.name)
            return None
        if status is None or status.next >= self._clock():
            self._save_status(status.last if status else None)
            return None
        log.info(
            "Function '%s' missed its occurrence at %s while no host was running; "
            "running it now (past due).",
            self.name,
            status.next.isoformat(),
        )
        outcome = self.fire(scheduled=status.next)
        self._save_status(status.next)
        return outcome

    def _save_status(self, last: datetime | None) -> None:
        if self.status is None:
            return
        now = self._clock()
        try:
            self.status.write(
                ScheduleStatus(last=last or now, next=self.next_due, last_updated=now)
            )
        except Exception:  # best effort, as above
            log.exception("Writing the schedule status of %s failed", self.name)

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set: fire at each occurrence (holding the lock, if any)."""
        try:
            while not stop.is_set():
                if self.lock is None or self._take_lock():
                    self._run_schedule(stop)
                elif stop.wait(self.lock.retry):
                    return
        finally:
            if self.lock is not None:
                self.lock.release()

    def _take_lock(self) -> bool:
        assert self.lock is not None
        try:
            taken = self.lock.try_acquire()
        except Exception:  # storage trouble: no lock this time, try again later
            log.exception("Taking the singleton lock of %s failed", self.name)
            return False
        if taken:
            log.info(
                "Singleton lock acquired (%s); this instance runs the schedule.", self.lock.name
            )
            # Start as a new host would: from the next occurrence, after catching up.
            self.next_due = self.schedule.next_after(self._clock())
        return taken

    def _run_schedule(self, stop: threading.Event) -> None:
        self.catch_up()
        if self.run_on_startup:
            self.fire(startup=True)
        while not stop.is_set():
            if self.lock is not None and not self.lock.holding:
                log.warning(
                    "Singleton lock of %s lost; this instance stops its schedule.", self.name
                )
                self.lock.release()
                return
            delay = (self.next_due - self._clock()).total_seconds()
            if delay > 0 and stop.wait(min(delay, 1.0)):
                return
            if delay <= 0 or self._clock() >= self.next_due:
                self.run_pending()
