"""Timer schedule monitoring: the host's record of each timer's last and next occurrence.

Like the Functions host (`useMonitor`, on by default for schedules of a minute or more), the
status is kept in the `azure-webjobs-hosts` container (`timers/<hostId>/Host.Functions.<name>/
status`), so an occurrence missed while no host was running is run, past due, at start.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from devhost.ncrontab import NCronSchedule

MONITOR_MIN_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class ScheduleStatus:
    """The last occurrence run, the next one due, and when this was written."""

    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> str:
        """The status document (the host's field names)."""
        return json.dumps(
            {
                "Last": self.last.isoformat(),
                "Next": self.next.isoformat(),
                "LastUpdated": self.last_updated.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ScheduleStatus | None:
        """Parse a status document; None when it is not one (then it is rewritten)."""
        try:
            data = json.loads(text)
            return cls(
                last=datetime.fromisoformat(data["Last"]),
                next=datetime.fromisoformat(data["Next"]),
                last_updated=datetime.fromisoformat(data["LastUpdated"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def should_monitor(schedule: NCronSchedule, use_monitor: bool | None, now: datetime) -> bool:
    """The binding's `useMonitor` when set, else whether occurrences are >= 1 minute apart."""
    if use_monitor is not None:
        return use_monitor
    first = schedule.next_after(now)
    return schedule.next_after(first) - first >= MONITOR_MIN_INTERVAL


class TimerStatusStore:
    """Reads and writes one timer's status blob."""

    def __init__(self, container: ContainerClient, host_id: str, function: str) -> None:
        self._container = container
        self.blob_name = f"timers/{host_id}/Host.Functions.{function}/status"

    def read(self) -> ScheduleStatus | None:
        """The stored status, or None when there is none (first start)."""
        try:
            text = self._container.download_blob(self.blob_name).readall()
        except ResourceNotFoundError:
            return None
        return ScheduleStatus.from_json(text.decode("utf-8"))

    def write(self, status: ScheduleStatus) -> None:
        """Store `status` (creating the hosts container when needed)."""
        data = status.to_json().encode("utf-8")
        try:
            self._container.upload_blob(self.blob_name, data, overwrite=True)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()
            self._container.upload_blob(self.blob_name, data, overwrite=True)
